"""Backgrounds for fusion (ALGORITHMS.md §3.8)."""

import numpy as np
import pytest

from isoview_core.fusion.background import (
    fusion_backgrounds,
    pooled_background,
    subtracts_background,
)
from isoview_core.fusion.config import FusionConfig
from isoview_core.numerics.percentiles import hazen_percentile, matlab_subsample


@pytest.mark.parametrize(
    ("mode", "override", "expected"),
    [("estimate", None, True), ("fixed", None, True), ("none", None, False), ("none", True, True), ("estimate", False, False)],
)
def test_background_subtraction_is_coupled_to_the_intensity_mode(mode, override, expected):
    config = FusionConfig(intensity_correction_mode=mode, subtract_background=override)
    assert subtracts_background(config) is expected


def test_segmented_backgrounds_are_the_last_elements_of_the_min_intensity_records():
    records = ([180.0, 101.5], [175.0, 97.0])
    assert fusion_backgrounds(FusionConfig(), min_intensity_records=records) == (101.5, 97.0)
    assert fusion_backgrounds(FusionConfig(intensity_correction_mode="none"), min_intensity_records=records) == (0.0, 0.0)
    with pytest.raises(ValueError, match="min-intensity records"):
        fusion_backgrounds(FusionConfig())


def test_unsegmented_background_is_pooled_over_the_non_zero_samples_of_both_stacks():
    rng = np.random.default_rng(0)
    reference = rng.integers(90, 400, size=(6, 30, 20)).astype(np.uint16)
    second = rng.integers(80, 300, size=(6, 30, 20)).astype(np.uint16)
    second[:, :, :5] = 0  # zero fill of the transform: excluded
    samples = np.concatenate([matlab_subsample(reference, 7), matlab_subsample(second, 7)])
    expected = hazen_percentile(samples[samples > 0], 5.0)
    assert pooled_background(reference, second, percentile=5.0, subsample=7) == expected
    config = FusionConfig(data_type="unsegmented", fusion_subsample_stacks=7)
    assert fusion_backgrounds(config, reference=reference, second=second) == (expected, expected)
    with pytest.raises(ValueError, match="both camera stacks"):
        fusion_backgrounds(config)
