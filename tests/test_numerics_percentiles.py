import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from isoview_core.numerics import percentiles
from isoview_core.numerics.percentiles import (
    KNEE_MAX_SAMPLES,
    _knee_candidates,
    hazen_percentile,
    hazen_percentile_of_counts,
    knee_threshold,
    matlab_subsample,
)


def test_hazen_percentile_matches_matlab_prctile():
    # MATLAB: prctile([1 2 3 4], 50) = 2.5, prctile([1 2 3 4], 10) = 1 (below the first rank 12.5 %),
    # prctile([1 2 3 4], 30) = 1 + (30 - 12.5) / 25 = 1.7
    samples = np.array([4, 1, 3, 2], dtype=np.uint16)
    assert hazen_percentile(samples, 50) == 2.5
    assert hazen_percentile(samples, 10) == 1.0
    assert hazen_percentile(samples, 30) == pytest.approx(1.7)
    assert hazen_percentile(np.array([]), 5) == 0.0


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.integers(0, 65535), min_size=1, max_size=60) | st.lists(st.integers(0, 5), min_size=1, max_size=60),
    percent=st.floats(0, 100),
)
def test_integer_histogram_percentile_equals_numpy_hazen(values, percent):
    samples = np.array(values, dtype=np.uint16)
    expected = np.percentile(samples.astype(float), percent, method="hazen")
    assert hazen_percentile(samples, percent) == pytest.approx(expected, rel=1e-12, abs=1e-9)
    assert hazen_percentile(samples.astype(np.uint8) if samples.max() < 256 else samples, percent) == pytest.approx(expected, rel=1e-12, abs=1e-9)


@settings(max_examples=30, deadline=None)
@given(planes=st.integers(1, 9), step=st.integers(1, 17), slab=st.integers(1, 4))
def test_subsample_of_slabs_equals_matlab_order_of_whole_stack(planes, step, slab):
    volume = np.arange(planes * 5 * 3).reshape(planes, 5, 3)
    whole = volume.transpose(0, 2, 1).ravel()[::step]  # MATLAB stack(1:step:end) on (y, x, z)
    pieces = [matlab_subsample(volume[z : z + slab], step, z) for z in range(0, planes, slab)]
    assert np.array_equal(np.concatenate(pieces), whole)


def test_knee_threshold_finds_the_elbow_of_an_l_curve():
    flat = np.linspace(0.0, 1.0, 9000)
    steep = np.linspace(1.0, 1000.0, 100)
    assert 0.9 <= knee_threshold(np.concatenate([steep, flat])) <= 12.0


def test_knee_threshold_subsamples_long_inputs_with_matlab_step():
    # 225 000 values: MATLAB's step round(4.5) = 5 (NumPy's round would give 4). An L-curve whose corner
    # (index 150 007) is no multiple of 5: the knee is the last flat sample kept, 150 005 (step 4: 151 007).
    flat = np.arange(150_008, dtype=float)
    values = np.concatenate([flat, flat[-1] + 1000.0 * np.arange(1, 225_000 - flat.size + 1)])
    assert knee_threshold(np.random.default_rng(0).permutation(values)) == 150_005


def _knee_by_full_sort(values: np.ndarray) -> float:
    """The original ``determineThreshold``: the whole sorted, sub-sampled curve and its farthest point from the chord."""
    ordered = np.sort(np.asarray(values, dtype=np.float64).ravel())
    if ordered.size > KNEE_MAX_SAMPLES:
        ordered = ordered[:: int(np.floor(ordered.size / KNEE_MAX_SAMPLES + 0.5))]
    n = ordered.size
    if n < 3:
        return float(ordered[-1])
    x = np.arange(1, n + 1, dtype=np.float64)
    chord = np.array([x[-1] - x[0], ordered[-1] - ordered[0]])
    rel_x, rel_y = x - x[0], ordered - ordered[0]
    projection = (rel_x * chord[0] + rel_y * chord[1]) / float(chord @ chord)
    return float(ordered[int(np.argmax(np.hypot(projection * chord[0] - rel_x, projection * chord[1] - rel_y)))])


def _distances(kind: str, size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "exponential":
        return rng.standard_exponential(size)
    if kind == "ties":  # few distinct values, a third of them 0
        return rng.integers(0, 4, size) * rng.integers(0, 2, size) * 0.25
    if kind == "wide":  # values over many binades, zeros, the largest float
        values = rng.standard_exponential(size) * 10.0 ** rng.integers(-300, 300, size)
        values[::9] = 0.0
        values[5::97] = np.finfo(np.float64).max
        return values
    if kind == "l-curve":  # defect-map like: noise and a few outliers far above it
        values = np.abs(rng.standard_normal(size)) * 0.01
        values[rng.integers(0, size, size // 100)] = rng.random(size // 100) * 50.0
        return values
    return np.full(size, 0.5)  # constant


@pytest.mark.parametrize("kind", ["exponential", "ties", "wide", "l-curve", "constant"])
@pytest.mark.parametrize("size, step", [(7, 1), (1000, 1), (1001, 3), (20_011, 17)])
def test_knee_candidates_are_the_sorted_curve_points(kind, size, step):
    largest = percentiles._SELECTION_MAX_BITS.view(np.float64)  # knee_threshold sorts inputs beyond it in full
    values = np.minimum(_distances(kind, size, size), largest)
    bits = values.view(np.uint64)
    ranks, curve = _knee_candidates(bits, bits.max(), step)
    points = np.sort(values)[::step]
    assert ranks[0] == 0 and ranks[-1] == points.size - 1 and np.all(np.diff(ranks) > 0)
    assert np.array_equal(curve, points[ranks])


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")  # "wide": the original's
@pytest.mark.parametrize("kind", ["exponential", "ties", "wide", "l-curve", "constant"])
@pytest.mark.parametrize("size", [1, 2, 3, 1000, 65_536, 225_000])
def test_knee_threshold_equals_the_full_sort(kind, size, monkeypatch):
    values = _distances(kind, size, size + 1)
    monkeypatch.setattr(percentiles, "KNEE_SELECTION_MIN_SIZE", 3)  # the selection on small inputs too
    assert knee_threshold(values) == _knee_by_full_sort(values)
    assert knee_threshold(values.astype(np.float32)) == _knee_by_full_sort(values.astype(np.float32))


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # NaN / infinite chords: the original's
@pytest.mark.parametrize("special", [np.nan, np.inf, -1.0, -0.0])
def test_knee_threshold_of_values_outside_the_selection_equals_the_full_sort(special):
    values = _distances("exponential", 70_000, 2)
    values[::1000] = special
    assert knee_threshold(values) == _knee_by_full_sort(values) or np.isnan(special)
    assert np.isnan(knee_threshold(values)) == np.isnan(_knee_by_full_sort(values))


def test_hazen_percentile_of_counts_equals_that_of_the_samples():
    samples = np.random.default_rng(0).integers(0, 65536, 1001).astype(np.uint16)
    samples[::3] = 65535
    counts = np.bincount(samples, minlength=65536)
    for percent in (0.0, 5.0, 50.0, 99.9, 100.0):
        assert hazen_percentile_of_counts(counts, percent) == float(np.percentile(samples.astype(float), percent, method="hazen"))
    assert hazen_percentile_of_counts(np.zeros(65536, dtype=np.int64), 5.0) == 0.0
