"""rloess (ALGORITHMS.md §4.3): hand-checkable cases, the toolbox's window rules, robustness, NaN imputation."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from isoview_core.temporal import rloess


def _tricube(distance: np.ndarray, reach: float) -> np.ndarray:
    return (1.0 - (np.abs(distance) / reach) ** 3) ** 3


def _weighted_quadratic_at(x: np.ndarray, y: np.ndarray, weights: np.ndarray, at: float) -> float:
    """Independent oracle: weighted least-squares quadratic (np.polyfit takes root weights), evaluated at `at`."""
    coefficients = np.polyfit(x - at, y, 2, w=np.sqrt(weights))
    return float(coefficients[-1])


def _matlab_transcription(y: np.ndarray, span: float, iterations: int = 5) -> np.ndarray:
    """Line-by-line transcription of the toolbox's ``smooth(y, span, 'rloess')`` (R2016-17), one fit at a time.

    Independent of the vectorised implementation: loops, ``iKNearestNeighbours`` by sorting,
    ``unifloess`` by the QR projection of the toolbox. Valid for spans >= 5 (full-rank fits).
    """
    y = np.asarray(y, dtype=float)
    n = y.size
    if span < 1:
        span = math.ceil(span * n)
    span = min(math.floor(span), n)
    x = np.arange(1, n + 1, dtype=float)
    ynan = np.isnan(y)

    def knn(k: int, i: int, member: np.ndarray) -> np.ndarray:
        if member.sum() <= k:
            return np.flatnonzero(member)
        d = np.abs(x - x[i])
        dk = np.sort(d[member])[k - 1]
        return np.flatnonzero((d <= dk) & member)

    def root_tricube(d: np.ndarray) -> np.ndarray:
        if d.max() > 0:
            d = d / d.max()
        return (1 - d**3) ** 1.5

    def fit(idx: np.ndarray, i: int, root_weight: np.ndarray) -> float:
        x1 = x[idx] - x[i]
        v = np.stack([np.ones_like(x1), x1, x1 * x1], axis=1) * root_weight[:, None]
        return float(np.linalg.lstsq(v, root_weight * y[idx], rcond=None)[0][0])

    uniform = not ynan.any()
    if uniform:
        span = 2 * (span // 2) + 1
        c = np.empty(n)
        halfw = (span - 1) // 2
        for i in range(n):  # unifloess, written per point with the toolbox's windows and weights
            if halfw <= i < n - halfw:
                idx = np.arange(i - halfw, i + halfw + 1)
                c[i] = fit(idx, i, (1 - (np.abs(idx - i) / halfw) ** 3) ** 1.5)
            else:  # end point: the span - 1 samples nearest its end, reach span - j (j = 1-based rank from that end)
                j = i + 1 if i < halfw else n - i
                local = np.arange(1, span)
                idx = local - 1 if i < halfw else n - local
                c[i] = fit(idx, i, (1 - (np.abs(local - j) / (span - j)) ** 3) ** 1.5)
        lbound = np.maximum(1, np.minimum(n + 1 - span, np.arange(1, n + 1) - halfw))
        rbound = np.minimum(n, np.maximum(span, np.arange(1, n + 1) + halfw))
    else:
        c = np.empty(n)
        lbound = np.empty(n, dtype=int)
        rbound = np.empty(n, dtype=int)
        for i in range(n):
            idx = knn(span, i, ~ynan)
            lbound[i], rbound[i] = idx.min() + 1, idx.max() + 1
            w = root_tricube(np.abs(x[idx] - x[i]))
            if np.all(w < np.sqrt(np.finfo(float).eps)):
                w[:] = 1
            c[i] = fit(idx, i, w)
    max_abs_y_eps = np.nanmax(np.abs(y)) * np.finfo(float).eps
    for _ in range(iterations):
        r = y - c
        ok = ~np.isnan(r)
        s = max(1e8 * max_abs_y_eps, np.median(np.abs(r[ok])))
        u = np.zeros(n)
        z = r[ok] / (6 * s)
        u[ok] = np.where(np.abs(z) < 1, np.abs(1 - z**2), 0.0)  # root bisquare weights
        new = c.copy()
        for i in range(n):
            idx = np.arange(lbound[i] - 1, rbound[i])
            idx = idx[~ynan[idx]]
            if np.any(u[idx] <= 0):
                idx = knn(span, i, u > 0)
            w = root_tricube(np.abs(x[idx] - x[i]))
            if np.all(w < np.sqrt(np.finfo(float).eps)):
                w[:] = 1
            new[i] = fit(idx, i, w * u[idx])
        c = new
    return c


# --- hand-checkable cases -------------------------------------------------------------------------


@pytest.mark.parametrize("span", [5, 8, 20, 21, 0.3, 100])
def test_quadratic_is_reproduced_exactly(span: float) -> None:
    x = np.arange(30, dtype=float)
    y = 0.5 - 1.2 * x + 0.07 * x**2
    np.testing.assert_allclose(rloess(y, span), y, rtol=0, atol=1e-10)


def test_constant_with_one_outlier_ignores_the_outlier() -> None:
    y = np.full(40, 3.0)
    y[17] = 13.0
    smoothed = rloess(y, 20)
    np.testing.assert_allclose(smoothed, 3.0, rtol=0, atol=1e-9)
    # without robust iterations the outlier leaks into its neighbours
    assert np.abs(rloess(y, 20, robust_iterations=0) - 3.0).max() > 0.5


def test_interior_window_is_centred_with_zero_weight_ends() -> None:
    rng = np.random.default_rng(1)
    y = rng.normal(size=15)
    s, h, i = 7, 3, 6  # span 7 on 15 samples; sample 6 (0-based) is interior
    window = np.arange(i - h, i + h + 1)
    expected = _weighted_quadratic_at(window, y[window], _tricube(window - i, h), i)
    assert rloess(y, s, robust_iterations=0)[i] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("i", [0, 1, 2])
def test_end_windows_are_the_first_s_minus_1_samples(i: int) -> None:
    """End points (i <= h): window = first s - 1 samples, tricube reach s - i (1-based i); mirrored at the end."""
    rng = np.random.default_rng(2)
    y = rng.normal(size=15)
    s = 7
    window = np.arange(s - 1)
    reach = s - (i + 1)
    expected = _weighted_quadratic_at(window, y[window], _tricube(window - i, reach), i)
    smoothed = rloess(y, s, robust_iterations=0)
    assert smoothed[i] == pytest.approx(expected, rel=1e-12)
    # the mirrored end uses the same rule on the reversed series
    assert rloess(y[::-1], s, robust_iterations=0)[-1 - i] == pytest.approx(expected, rel=1e-12)


def test_even_span_is_forced_odd_for_a_complete_series() -> None:
    y = np.random.default_rng(3).normal(size=25)
    np.testing.assert_array_equal(rloess(y, 20), rloess(y, 21))
    assert not np.array_equal(rloess(y, 19), rloess(y, 21))


def test_span_fraction() -> None:
    y = np.random.default_rng(4).normal(size=20)
    np.testing.assert_array_equal(rloess(y, 0.5), rloess(y, 10))  # ceil(0.5 * 20) = 10 -> 11
    np.testing.assert_array_equal(rloess(y, 0.52), rloess(y, 11))  # ceil(10.4) = 11
    y[5] = np.nan  # with NaN the span is not forced odd: 10 nearest valid samples
    np.testing.assert_array_equal(rloess(y, 0.5), rloess(y, 10))
    assert not np.array_equal(rloess(y, 10), rloess(y, 11))


def test_span_at_least_n_uses_every_sample_with_the_toolbox_reach() -> None:
    """n = 6, span 20 -> s = 6 -> forced odd 7 > n: all samples, tricube reach s - i (no zero weight)."""
    y = np.array([1.0, 2.5, 2.0, 4.0, 3.5, 6.0])
    x = np.arange(6)
    smoothed = rloess(y, 20, robust_iterations=0)
    for i in range(6):
        reach = 7 - (i + 1) if i < 3 else i + 1
        assert smoothed[i] == pytest.approx(_weighted_quadratic_at(x, y, _tricube(x - i, reach), i), rel=1e-12)
    quadratic = 2.0 + 0.3 * x - 0.1 * x**2
    np.testing.assert_allclose(rloess(quadratic, 20), quadratic, atol=1e-12)


def test_span_one_returns_the_data() -> None:
    y = np.array([1.0, 5.0, 2.0, np.nan])
    np.testing.assert_array_equal(rloess(y, 1), y)


def test_missing_sample_of_a_linear_series_is_imputed_exactly() -> None:
    y = 2.0 + 3.0 * np.arange(25)
    expected = y.copy()
    y[7] = np.nan
    y[20] = np.nan
    np.testing.assert_allclose(rloess(y, 20), expected, rtol=0, atol=1e-10)


def test_nan_windows_are_the_nearest_valid_samples_with_ties() -> None:
    """Sample 4 is NaN; its 5 nearest valid samples are 3, 5 (d=1), 2, 6 (d=2) and, tied at d=3, 1 and 7."""
    rng = np.random.default_rng(5)
    y = rng.normal(size=10)
    y[4] = np.nan
    window = np.array([1, 2, 3, 5, 6, 7])
    expected = _weighted_quadratic_at(window, y[window], _tricube(window - 4, 3), 4)
    assert rloess(y, 5, robust_iterations=0)[4] == pytest.approx(expected, rel=1e-12)


def test_fewer_than_three_valid_samples_are_left_unsmoothed(caplog: pytest.LogCaptureFixture) -> None:
    y = np.array([np.nan, 1.0, np.nan, 4.0, np.nan])
    with caplog.at_level(logging.WARNING):
        out = rloess(y, 3)
    np.testing.assert_array_equal(out, y)
    assert "unsmoothed" in caplog.text


def test_linear_degree_reproduces_lines() -> None:
    y = 4.0 - 0.25 * np.arange(12)
    np.testing.assert_allclose(rloess(y, 5, degree=1), y, atol=1e-12)


@pytest.mark.parametrize(
    ("y", "span", "kwargs", "match"),
    [
        (np.zeros((3, 3)), 5, {}, "1-D"),
        (np.array([1.0, np.inf, 2.0]), 5, {}, "infinite"),
        (np.arange(5.0), 0, {}, "span"),
        (np.arange(5.0), float("nan"), {}, "span"),
        (np.arange(5.0), 3, {"degree": 3}, "degree"),
        (np.arange(5.0), 3, {"robust_iterations": -1}, "robust_iterations"),
    ],
)
def test_invalid_input_is_refused(y: np.ndarray, span: float, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        rloess(y, span, **kwargs)


# --- agreement with a literal transcription of the toolbox ---------------------------------------


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("span", [5, 8, 20, 0.4])
def test_matches_a_literal_transcription_of_the_toolbox(seed: int, span: float) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(12, 60))
    y = np.cumsum(rng.normal(size=n)) + rng.standard_t(2, size=n)  # drift, heavy-tailed noise
    y[rng.integers(0, n, size=2)] += rng.choice([-1, 1], size=2) * 15  # gross outliers
    if seed % 2:
        y[rng.choice(n, size=max(1, n // 8), replace=False)] = np.nan
    np.testing.assert_allclose(rloess(y, span, stable=False), _matlab_transcription(y, span), rtol=1e-9, atol=1e-9)


def test_short_series_matches_the_transcription() -> None:
    y = np.array([0.3, 1.9, 1.1, 3.2, 2.2, 3.9, 2.7, 5.0])  # n = 8 < span 20
    np.testing.assert_allclose(rloess(y, 20), _matlab_transcription(y, 20), rtol=1e-9, atol=1e-12)


# --- property ---------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    a=st.floats(-100, 100),
    b=st.floats(-5, 5),
    c=st.floats(-0.5, 0.5),
    n=st.integers(3, 80),
    span=st.one_of(st.integers(3, 40), st.floats(0.1, 0.99)),
)
def test_noise_free_quadratic_is_returned(a: float, b: float, c: float, n: int, span: float) -> None:
    x = np.arange(n, dtype=float)
    y = a + b * x + c * x**2
    scale = max(1.0, float(np.abs(y).max()))
    np.testing.assert_allclose(rloess(y, span), y, rtol=0, atol=1e-8 * scale)


# --- the stable fits: no invented values ----------------------------------------------------------


def _span_samples(n: int, span: float, valid: np.ndarray) -> int:
    """The number of samples per local fit, as §4.3 step 1-2 computes it."""
    s = math.ceil(span * n) if span < 1 else span
    s = min(math.floor(s), n)
    return 2 * (s // 2) + 1 if valid.all() else s


def _window(y: np.ndarray, i: int, s: int) -> np.ndarray:
    """The valid samples of sample i's nominal window: s shifted consecutive samples, or the s nearest valid ones."""
    n = y.size
    valid = ~np.isnan(y)
    if valid.all():
        first = min(max(i - s // 2, 0), max(n - s, 0))
        return y[first : first + s]
    distance = np.abs(np.arange(n) - i)[valid]
    kth = np.sort(distance)[min(s, distance.size) - 1]
    return y[valid][distance <= kth]


def _outside_their_windows(y: np.ndarray, smoothed: np.ndarray, span: float) -> list[int]:
    """Samples whose smoothed value leaves their window's range widened by the window's spread on either side.

    A NaN value (a missing sample left missing) is not outside.
    """
    s = _span_samples(y.size, span, ~np.isnan(y))
    outside = []
    for i, value in enumerate(smoothed):
        if np.isnan(value):
            continue
        window = _window(y, i, s)
        spread = np.ptp(window)
        tolerance = 1e-9 * max(1.0, np.abs(window).max())
        if not window.min() - spread - tolerance <= value <= window.max() + spread + tolerance:
            outside.append(i)
    return outside


def test_nearly_constant_short_series_keeps_its_value() -> None:
    """The demo's five x offsets: the toolbox's rank-deficient robust fits gave 3.656 at samples 1 and 3."""
    y = np.array([7.3165, 7.3099, 7.3086, 7.3092, 7.3155])
    smoothed = rloess(y, 5)
    assert smoothed.min() >= y.min() and smoothed.max() <= y.max()
    assert np.abs(rloess(y, 5, stable=False) - y).max() > 3  # the toolbox's fits invent values here


@pytest.mark.parametrize("seed", [0, 2, 4])
def test_short_span_toolbox_fits_invent_values_that_stable_fits_do_not(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(12, 60))
    y = np.cumsum(rng.normal(size=n)) + rng.standard_t(2, size=n)
    y[rng.integers(0, n, size=2)] += rng.choice([-1, 1], size=2) * 15
    assert _outside_their_windows(y, _matlab_transcription(y, 5), 5)  # the toolbox's fits at the series' start
    assert _outside_their_windows(y, rloess(y, 5), 5) == []


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("span", [8, 20, 0.4])
def test_stable_fits_equal_the_toolbox_where_its_fits_are_sound(seed: int, span: float) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(12, 60))
    y = np.cumsum(rng.normal(size=n)) + rng.standard_t(2, size=n)
    y[rng.integers(0, n, size=2)] += rng.choice([-1, 1], size=2) * 15
    if seed % 2:
        y[rng.choice(n, size=max(1, n // 8), replace=False)] = np.nan
    np.testing.assert_allclose(rloess(y, span), _matlab_transcription(y, span), rtol=1e-9, atol=1e-9)


_FIT = {
    "span": st.one_of(st.integers(1, 41), st.floats(0.05, 0.99)),
    "degree": st.sampled_from([1, 2]),
    "robust_iterations": st.integers(0, 5),
}


@st.composite
def _parameter_series(draw: st.DrawFn) -> np.ndarray:
    """Constant, nearly constant, linear or outlier-laden series of 1-60 samples, some with NaN."""
    n = draw(st.integers(1, 60))
    level = draw(st.floats(-100, 100))
    kind = draw(st.sampled_from(["constant", "nearly constant", "linear", "outliers"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    y = np.full(n, level)
    if kind == "nearly constant":
        y += rng.normal(scale=draw(st.floats(1e-4, 1.0)), size=n)
    elif kind == "linear":
        y += draw(st.floats(-5, 5)) * np.arange(n)
    elif kind == "outliers":
        y += rng.normal(scale=0.01, size=n)
        outliers = rng.random(n) < draw(st.floats(0.0, 0.4))
        y[outliers] += rng.choice([-1, 1], size=outliers.sum()) * draw(st.floats(1, 50))
    if draw(st.booleans()):
        y[rng.random(n) < draw(st.floats(0.0, 0.5))] = np.nan
    return y


def _imputed_or_left_missing(y: np.ndarray, smoothed: np.ndarray) -> np.ndarray:
    """Where to compare: every sample, but a missing one left missing (span 1, too few samples) is skipped."""
    left_missing = np.isnan(smoothed)
    assert (~left_missing | np.isnan(y)).all()  # a valid sample never becomes NaN
    return ~left_missing


@settings(max_examples=300, deadline=None)
@given(y=_parameter_series(), **_FIT)
def test_smoothed_values_stay_within_each_window_widened_by_its_spread(
    y: np.ndarray, span: float, degree: int, robust_iterations: int
) -> None:
    smoothed = rloess(y, span, degree=degree, robust_iterations=robust_iterations)
    _imputed_or_left_missing(y, smoothed)
    assert _outside_their_windows(y, smoothed, span) == []


@settings(max_examples=300, deadline=None)
@given(level=st.floats(-1e6, 1e6), n=st.integers(1, 60), missing=st.floats(0, 0.5), seed=st.integers(0, 2**32 - 1), **_FIT)
def test_a_constant_series_is_returned_exactly(
    level: float, n: int, missing: float, seed: int, span: float, degree: int, robust_iterations: int
) -> None:
    y = np.full(n, level)
    y[np.random.default_rng(seed).random(n) < missing] = np.nan
    smoothed = rloess(y, span, degree=degree, robust_iterations=robust_iterations)
    assert (smoothed[_imputed_or_left_missing(y, smoothed)] == level).all()


@settings(max_examples=300, deadline=None)
@given(
    a=st.floats(-100, 100), b=st.floats(-5, 5), n=st.integers(1, 60), missing=st.floats(0, 0.5),
    seed=st.integers(0, 2**32 - 1), **_FIT,
)
def test_a_linear_trend_is_followed(
    a: float, b: float, n: int, missing: float, seed: int, span: float, degree: int, robust_iterations: int
) -> None:
    line = a + b * np.arange(n)
    y = line.copy()
    y[np.random.default_rng(seed).random(n) < missing] = np.nan
    # With missing samples, a window of fewer than 4 valid samples can hold a single one of positive
    # weight (those at the largest distance get tricube weight 0): no fit can follow a trend there.
    valid = ~np.isnan(y)
    assume(valid.all() or min(_span_samples(n, span, valid), np.count_nonzero(valid)) >= 4)
    smoothed = rloess(y, span, degree=degree, robust_iterations=robust_iterations)
    compared = _imputed_or_left_missing(y, smoothed)
    # beyond the first or last valid sample a trend is not followed further than the window's spread
    valid_positions = np.flatnonzero(~np.isnan(y))
    compared[: valid_positions.min(initial=n)] = compared[valid_positions.max(initial=-1) + 1 :] = False
    scale = max(1.0, float(np.abs(line).max()))
    np.testing.assert_allclose(smoothed[compared], line[compared], rtol=0, atol=1e-8 * scale)
