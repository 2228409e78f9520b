import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from isoview_core.numerics.percentiles import (
    _sorted,
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


@pytest.mark.parametrize("signs", [False, True])
def test_knee_sort_equals_numpy_sort(signs):
    values = np.random.default_rng(0).standard_exponential(10_001) * 10.0 ** np.random.default_rng(1).integers(-300, 300, 10_001)
    values[::9] = 0.0
    values[1::13] = np.inf
    values[2::17] = np.nan
    values[3::19] = np.finfo(np.float64).max
    if signs:
        values[4::5] *= -1.0
    assert np.array_equal(_sorted(values), np.sort(values), equal_nan=True)


def test_hazen_percentile_of_counts_equals_that_of_the_samples():
    samples = np.random.default_rng(0).integers(0, 65536, 1001).astype(np.uint16)
    samples[::3] = 65535
    counts = np.bincount(samples, minlength=65536)
    for percent in (0.0, 5.0, 50.0, 99.9, 100.0):
        assert hazen_percentile_of_counts(counts, percent) == float(np.percentile(samples.astype(float), percent, method="hazen"))
    assert hazen_percentile_of_counts(np.zeros(65536, dtype=np.int64), 5.0) == 0.0
