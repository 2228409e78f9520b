"""Live windowed smoothing (ALGORITHMS.md §4.6): applied_parameters and WindowedSmoother."""

from __future__ import annotations

import numpy as np
import pytest
from test_temporal_series import drifting_series

from isoview_core.records import FusionParameters
from isoview_core.temporal import WindowedResult, WindowedSmoother, applied_parameters
from isoview_core.temporal.config import TemporalConfig

CONFIG = TemporalConfig(window=5)


def _parameters(x: float) -> FusionParameters:
    return FusionParameters(offset_x_px=x, offset_y_px=-x, rotation_deg=0.1, intensity_ratio=1.2, transition_z=30.0)


def _linear(timepoints: range) -> dict[int, FusionParameters]:
    return {t: _parameters(2.0 + 0.1 * t) for t in timepoints}


@pytest.mark.parametrize("corrupted", [1, 14, 28])
def test_acceptance_drift_with_one_corrupted_timepoint(corrupted: int) -> None:
    t, measured, truth = drifting_series(corrupted)
    estimates = dict(zip(t.tolist(), measured, strict=True))
    results = [applied_parameters(k, estimates, first_timepoint=0, last_timepoint=29, config=CONFIG) for k in t]
    applied = np.array([result.applied.as_array() for result in results])
    assert np.abs(applied[:, 0:2] - truth[:, 0:2]).max() < 0.5
    assert np.abs(applied[:, 3] - truth[:, 3]).max() < 0.05
    assert all(result.final for result in results)


@pytest.mark.parametrize(
    ("t", "last", "known", "window", "final"),
    [
        (0, 29, range(30), (0, 10), True),  # start: shifted, not shrunk
        (4, 29, range(30), (0, 10), True),
        (5, 29, range(30), (0, 10), True),
        (12, 29, range(30), (7, 17), True),  # interior: centred
        (27, 29, range(30), (19, 29), True),  # closed end: shifted
        (15, None, range(21), (10, 20), True),  # t + w = latest estimate: interior, final
        (18, None, range(21), (10, 20), False),  # provisional end: shifted, not final
        (12, None, range(21), (7, 17), True),
        (3, 6, range(7), (0, 6), True),  # acquisition shorter than the window
        (12, 29, [k for k in range(30) if k != 16], (7, 17), False),  # a record missing in the window
    ],
)
def test_window_bounds_and_finality(t: int, last: int | None, known: range, window: tuple[int, int], final: bool) -> None:
    estimates = _linear(known)
    result = applied_parameters(t, estimates, first_timepoint=0, last_timepoint=last, config=CONFIG)
    assert result.window == window
    assert result.final is final
    assert result.timepoint == t
    # a noise-free linear drift is reproduced wherever the window is (missing records imputed)
    assert result.applied.offset_x_px == pytest.approx(2.0 + 0.1 * t, abs=1e-9)


def test_a_record_without_estimate_counts_for_finality_and_is_imputed() -> None:
    estimates: dict[int, FusionParameters | None] = dict(_linear(range(30)))
    estimates[12] = None  # estimation failed for good
    result = applied_parameters(12, estimates, first_timepoint=0, last_timepoint=29, config=CONFIG)
    assert result.final
    assert result.applied.offset_x_px == pytest.approx(3.2, abs=1e-9)


def test_without_smoothing_the_estimate_or_its_interpolation_is_applied() -> None:
    config = CONFIG.model_copy(update={"temporal_smoothing": False})
    estimates = {0: _parameters(1.0), 4: _parameters(5.0), 6: _parameters(9.0)}
    results = [applied_parameters(t, estimates, first_timepoint=0, last_timepoint=8, config=config) for t in range(9)]
    assert [r.applied.offset_x_px for r in results] == [1.0, 2.0, 3.0, 4.0, 5.0, 7.0, 9.0, 9.0, 9.0]


def test_too_few_estimates_for_a_fit_are_interpolated() -> None:
    estimates = {3: _parameters(1.0), 9: _parameters(4.0)}
    result = applied_parameters(5, estimates, first_timepoint=0, last_timepoint=None, config=CONFIG)
    assert result.applied.offset_x_px == pytest.approx(2.0)
    assert not result.final


def test_static_mode_is_the_mean_of_every_estimate_and_final_only_when_closed() -> None:
    config = CONFIG.model_copy(update={"static_parameters": True})
    estimates = _linear(range(20))
    running = applied_parameters(3, estimates, first_timepoint=0, last_timepoint=None, config=config)
    assert running.applied.offset_x_px == pytest.approx(np.mean([2.0 + 0.1 * t for t in range(20)]))
    assert running.window == (0, 19) and not running.final
    closed = applied_parameters(3, estimates, first_timepoint=0, last_timepoint=19, config=config)
    assert closed.final and closed.applied == running.applied
    assert not applied_parameters(3, estimates, first_timepoint=0, last_timepoint=25, config=config).final


def test_read_factors_off_leaves_the_ratio_empty() -> None:
    config = CONFIG.model_copy(update={"read_factors": False})
    result = applied_parameters(5, _linear(range(12)), first_timepoint=0, last_timepoint=None, config=config)
    assert np.isnan(result.applied.intensity_ratio)


@pytest.mark.parametrize(
    ("t", "estimates", "first", "last", "match"),
    [
        (3, {}, 0, None, "no estimate"),
        (31, _linear(range(30)), 0, 29, "outside the acquisition"),
        (7, _linear(range(30)), 5, None, "estimate timepoint 0 lies outside"),
        (3, _linear(range(30)), 0, 20, "estimate timepoint 21 lies outside"),
    ],
)
def test_invalid_requests_are_refused(t: int, estimates: dict, first: int, last: int | None, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        applied_parameters(t, estimates, first_timepoint=first, last_timepoint=last, config=CONFIG)


# --- WindowedSmoother ----------------------------------------------------------------------------------


def _latest(reports: list[list[WindowedResult]]) -> dict[int, WindowedResult]:
    latest: dict[int, WindowedResult] = {}
    for batch in reports:
        assert [r.timepoint for r in batch] == sorted(r.timepoint for r in batch)
        latest.update({r.timepoint: r for r in batch})
    return latest


def test_smoother_order_and_duplicates_do_not_matter() -> None:
    t, measured, _ = drifting_series(corrupted=14, seed=3)
    estimates = dict(zip(t.tolist(), measured, strict=True))
    expected = {k: applied_parameters(k, estimates, first_timepoint=0, last_timepoint=29, config=CONFIG) for k in t.tolist()}

    in_order = WindowedSmoother(CONFIG)
    reports = []
    for k in t.tolist():
        in_order.add_estimate(k, estimates[k])
        reports.append(in_order.ready())
    in_order.close(29)
    reports.append(in_order.ready())
    assert _latest(reports) == expected

    rng = np.random.default_rng(7)
    arrivals = rng.permutation(np.concatenate([t, rng.choice(t, size=15)])).tolist()  # shuffled, 15 repeats
    shuffled = WindowedSmoother(CONFIG)
    reports = []
    for k in arrivals:
        shuffled.add_estimate(k, estimates[k])
        reports.append(shuffled.ready())
    shuffled.close(29)
    reports.append(shuffled.ready())
    assert _latest(reports) == expected
    assert shuffled.ready() == []


def test_smoother_reports_provisional_then_final_values() -> None:
    smoother = WindowedSmoother(CONFIG)
    for k in range(12):
        smoother.add_estimate(k, _linear(range(12))[k])
    first = {r.timepoint: r for r in smoother.ready()}
    assert sorted(first) == list(range(12))
    assert [k for k, r in first.items() if r.final] == list(range(7))  # t + w <= 11
    smoother.add_estimate(12, _linear(range(13))[12])
    assert [r.timepoint for r in smoother.ready() if r.final] == [7]


def test_a_late_estimate_finalises_exactly_the_windows_containing_it() -> None:
    estimates = _linear(range(30))
    smoother = WindowedSmoother(CONFIG)
    for k in range(30):
        if k != 15:
            smoother.add_estimate(k, estimates[k])
    smoother.close(29)
    assert {r.timepoint for r in smoother.ready() if not r.final} == set(range(10, 21))
    smoother.add_estimate(15, estimates[15])
    late = smoother.ready()
    assert [r.timepoint for r in late] == list(range(10, 21)) and all(r.final for r in late)


def test_a_late_changed_estimate_re_reports_exactly_the_affected_timepoints() -> None:
    t, measured, _ = drifting_series(corrupted=3, seed=5)
    estimates = dict(zip(t.tolist(), measured, strict=True))
    smoother = WindowedSmoother(CONFIG)
    for k, p in estimates.items():
        smoother.add_estimate(k, p)
    smoother.close(29)
    before = {r.timepoint: r for r in smoother.ready()}
    assert len(before) == 30

    changed = estimates[15].model_copy(update={"offset_x_px": estimates[15].offset_x_px + 0.3})
    smoother.add_estimate(15, changed)
    updated = {**estimates, 15: changed}
    after = {k: applied_parameters(k, updated, first_timepoint=0, last_timepoint=29, config=CONFIG) for k in t}
    moved = {k for k in t if abs(after[k].applied.offset_x_px - before[k].applied.offset_x_px) > 0.01}
    reported = smoother.ready()
    assert {r.timepoint for r in reported} == moved
    assert 15 in moved and moved <= set(range(10, 21))  # only windows holding timepoint 15
    assert all(r == after[r.timepoint] for r in reported)
    smoother.add_estimate(15, changed)  # the same estimate again: nothing to report
    assert smoother.ready() == []


def test_close_finalises_the_tail() -> None:
    estimates = _linear(range(30))
    smoother = WindowedSmoother(CONFIG)
    for k in range(30):
        smoother.add_estimate(k, estimates[k])
    assert {r.timepoint for r in smoother.ready() if not r.final} == set(range(25, 30))
    smoother.close(29)
    tail = smoother.ready()
    assert [r.timepoint for r in tail] == list(range(25, 30))
    assert all(r.final and r.window == (19, 29) for r in tail)


def test_close_after_the_last_estimate_extends_the_acquisition() -> None:
    smoother = WindowedSmoother(CONFIG)
    for k, p in _linear(range(20)).items():
        smoother.add_estimate(k, p)
    smoother.ready()
    smoother.close(22)  # timepoints 20..22 will never be estimated: imputed, never final
    tail = {r.timepoint: r for r in smoother.ready()}
    assert set(range(20, 23)) <= set(tail)
    assert not any(r.final for r in tail.values())
    assert tail[22].applied.offset_x_px == pytest.approx(2.0 + 0.1 * 22, abs=1e-9)
    for k in range(20, 23):
        smoother.add_estimate(k, None)
    assert all(r.final for r in smoother.ready())


def test_smoother_static_mode() -> None:
    smoother = WindowedSmoother(CONFIG.model_copy(update={"static_parameters": True}))
    for k, p in _linear(range(10)).items():
        smoother.add_estimate(k, p)
    running = smoother.ready()
    assert len(running) == 10 and len({r.applied for r in running}) == 1 and not any(r.final for r in running)
    smoother.close(9)
    closed = smoother.ready()
    assert [r.timepoint for r in closed] == list(range(10)) and all(r.final for r in closed)


def test_smoother_refuses_inconsistent_input() -> None:
    smoother = WindowedSmoother(CONFIG, first_timepoint=5)
    with pytest.raises(ValueError, match="outside the acquisition"):
        smoother.add_estimate(4, _parameters(1.0))
    smoother.add_estimate(9, _parameters(1.0))
    with pytest.raises(ValueError, match="cannot close"):
        smoother.close(8)
    smoother.close(12)
    with pytest.raises(ValueError, match="already closed"):
        smoother.close(13)
    with pytest.raises(ValueError, match="outside the acquisition"):
        smoother.add_estimate(13, _parameters(1.0))


def _noisy_estimates(truth: np.ndarray, seed: int) -> dict[int, FusionParameters]:
    """Estimates as precise as the fast registration: 0.004 px on the offsets, 0.05 % on the ratio."""
    noise = np.array([0.004, 0.004, 0.0, 0.0005, 0.0]) * np.array([1, 1, 1, truth[0, 3], 1])
    measured = truth + np.random.default_rng(seed).normal(size=truth.shape) * noise
    return {t: FusionParameters.from_array(row) for t, row in enumerate(measured)}


@pytest.mark.parametrize("drift_px", [0.0, 0.05])
@pytest.mark.parametrize("timepoints_past_one_window", [0, 1, 7])
@pytest.mark.parametrize("window", [1, 2, 3, 5])
def test_first_and_last_timepoints_get_the_truth(window: int, timepoints_past_one_window: int, drift_px: float) -> None:
    """The applied values at an acquisition's ends, over 50 noisy series (the toolbox's fits gave 3.66 for 7.31)."""
    config = TemporalConfig(window=window)
    n = 2 * window + 1 + timepoints_past_one_window
    t = np.arange(n)
    truth = np.column_stack([7.31 + drift_px * t, -4.6 - drift_px * t, 0 * t, 1.25 + 0 * t, 23.0 + 0 * t])
    for seed in range(50):
        estimates = _noisy_estimates(truth, seed)
        for end in (0, n - 1):
            applied = applied_parameters(end, estimates, first_timepoint=0, last_timepoint=n - 1, config=config)
            values = applied.applied.as_array()
            assert np.abs(values[:2] - truth[end, :2]).max() <= 0.05, (seed, end, values)
            assert abs(values[3] / truth[end, 3] - 1) <= 0.01, (seed, end, values)
