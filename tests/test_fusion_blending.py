"""Blending of the two camera stacks (ALGORITHMS.md §3.10); the fused volume's quality is tested end to end in test_pipeline_pair."""

from __future__ import annotations

import logging
import sys

import numpy as np
import pytest
from scipy import ndimage

from isoview_core.fusion.blending import blend, blend_zones, blending_weights
from isoview_core.fusion.intensity import IntensityCorrection, apply_intensity_correction
from isoview_core.fusion.kernels import ZONE_BACK, ZONE_BLEND, ZONE_FRONT
from isoview_core.numerics.rounding import to_u16

# --- the §3.10 weight table ---------------------------------------------------------------------------

# Front weight for one column with 1-based transition plane m = 6, planes k = 0 .. 11 (0-based).
# B = 3: k < m - B = 3 -> 1; k = 3, 4, 5 (j = 0, 1, 2): 1 - 0.5 j / 2 = 1, 0.75, 0.5;
#        k = 6, 7, 8 (j = 0, 1, 2): 0.5 - 0.5 j / 2 = 0.5, 0.25, 0; k >= 9 -> 0.
TABLE_B3 = [1, 1, 1, 1, 0.75, 0.5, 0.5, 0.25, 0, 0, 0, 0]
# B = 4: k < 2 -> 1; k = 2..5: 1, 5/6, 2/3, 1/2; k = 6..9: 1/2, 1/3, 1/6, 0; k >= 10 -> 0.
TABLE_B4 = [1, 1, 1, 5 / 6, 2 / 3, 0.5, 0.5, 1 / 3, 1 / 6, 0, 0, 0]


@pytest.mark.parametrize(("blending_range", "expected"), [(3, TABLE_B3), (4, TABLE_B4), (1, [1] * 6 + [0] * 6)])
def test_front_weights_follow_the_table(blending_range, expected):
    weights = blending_weights(np.array([[6]], dtype=np.uint16), 12, blending_range)
    np.testing.assert_allclose(weights[:, 0, 0], expected, atol=1e-6)


def test_blend_of_a_bright_front_and_a_dark_back_is_the_weight_table():
    front = np.full((12, 1, 2), 1000, dtype=np.uint16)
    back = np.zeros_like(front)
    transition = np.array([[6, 6]], dtype=np.uint16)
    fused = blend(front, back, transition, blending_range=3)
    assert fused[:, 0, 0].tolist() == [1000, 1000, 1000, 1000, 750, 500, 500, 250, 0, 0, 0, 0]
    swapped = blend(back, front, transition, blending_range=3, front_flag=2)  # camera 2 in front
    assert np.array_equal(swapped, fused)


def test_front_and_back_weights_sum_to_one():
    rng = np.random.default_rng(1)
    transition = rng.integers(4, 27, size=(7, 9)).astype(np.uint16)
    for blending_range in (2, 3, 4, 7):
        weights = blending_weights(transition, 30, blending_range)
        assert ((weights >= 0) & (weights <= 1)).all()
        assert (np.diff(weights, axis=0) <= 0).all()  # the front view fades out with depth
        constant = np.full((30, 7, 9), 4321, dtype=np.uint16)
        # front weight w and back weight 1 - w: a constant scene stays exactly constant
        assert (blend(constant, constant, transition, blending_range=blending_range) == 4321).all()
        flag_two = blending_weights(transition, 30, blending_range, front_flag=2)
        assert np.array_equal(flag_two, weights)


def test_excluded_columns_have_no_weight():
    weights = blending_weights(np.array([[0, 5]], dtype=np.uint16), 10, 2)
    assert np.isnan(weights[:, 0, 0]).all() and not np.isnan(weights[:, 0, 1]).any()


def test_blending_range_one_is_a_hard_cut_with_a_warning(caplog):
    front = np.full((8, 1, 1), 900, dtype=np.uint16)
    back = np.full((8, 1, 1), 100, dtype=np.uint16)
    with caplog.at_level(logging.WARNING):
        fused = blend(front, back, np.array([[4]], dtype=np.uint16), blending_range=1)
    assert fused[:, 0, 0].tolist() == [900, 900, 900, 900, 100, 100, 100, 100]  # front for k <= m - 1
    assert "hard cut" in caplog.text


# --- streaming, extremes, empty columns ---------------------------------------------------------------


@pytest.fixture()
def random_pair():
    rng = np.random.default_rng(7)
    shape = (23, 11, 13)
    reference = rng.integers(0, 65536, size=shape, dtype=np.uint16)
    second = rng.integers(0, 65536, size=shape, dtype=np.uint16)
    transition = rng.integers(3, 21, size=shape[1:]).astype(np.uint16)
    transition[0, :4] = 0
    return reference, second, transition


@pytest.mark.parametrize("fusion_type", ["adaptive", "average"])
@pytest.mark.parametrize("front_flag", [1, 2])
def test_slab_by_slab_equals_whole_volume(random_pair, fusion_type, front_flag):
    reference, second, transition = random_pair
    options = {"fusion_type": fusion_type, "blending_range": 3, "front_flag": front_flag, "empty_mask_fill": "max"}
    whole = blend(reference, second, transition, **options)
    slabs = np.zeros_like(whole)
    for start in range(0, reference.shape[0], 5):
        stop = start + 5
        blend(reference[start:stop], second[start:stop], transition, first_plane=start, out=slabs[start:stop], **options)
    assert np.array_equal(slabs, whole)
    in_place = reference.copy()
    blend(in_place, second, transition, out=in_place, **options)  # output may overwrite an input
    assert np.array_equal(in_place, whole)


def test_uint16_extremes_do_not_wrap():
    full = np.full((10, 2, 2), 65535, dtype=np.uint16)
    zero = np.zeros_like(full)
    transition = np.full((2, 2), 5, dtype=np.uint16)
    assert (blend(full, full, fusion_type="average") == 65535).all()
    assert (blend(full, full, transition) == 65535).all()
    assert (blend(zero, zero, transition) == 0).all()
    # MATLAB adds in uint16: 65535 + 65535 saturates to 65535, halved 32767.5 -> 32768
    assert (blend(full, full, fusion_type="average", matlab_saturating_average=True) == 32768).all()
    almost = np.full_like(full, 65534)
    assert (blend(full, almost, fusion_type="average") == 65535).all()  # 65534.5 rounds half away
    seam = blend(full, zero, transition, blending_range=2)[:, 0, 0]
    assert seam.tolist() == [65535, 65535, 65535, 65535, 32768, 32768, 0, 0, 0, 0]


def test_each_voxel_is_rounded_once_half_away_from_zero(random_pair):
    reference, second, transition = random_pair
    v1, v2 = reference.astype(np.float64), second.astype(np.float64)
    assert np.array_equal(blend(reference, second, fusion_type="average"), to_u16((v1 + v2) / 2))
    # B = 3: weights 1, 0.75, 0.5, 0.25, 0 are exact in float32 and float64, so the result must be
    # bit-identical to a float64 computation with a single rounding
    weights = blending_weights(transition, reference.shape[0], 3)
    expected = to_u16(np.nan_to_num(weights) * v1 + (1 - np.nan_to_num(weights)) * v2)
    expected[:, transition == 0] = 0
    assert np.array_equal(blend(reference, second, transition, blending_range=3), expected)


@pytest.mark.parametrize(
    ("fill", "expected"),
    [("zero", lambda v1, v2: np.zeros_like(v1)), ("reference", lambda v1, v2: v1), ("max", np.maximum)],
)
def test_empty_map_columns_follow_empty_mask_fill(random_pair, fill, expected):
    reference, second, transition = random_pair
    for front_flag in (1, 2):
        fused = blend(reference, second, transition, empty_mask_fill=fill, front_flag=front_flag)
        empty = transition == 0
        assert np.array_equal(fused[:, empty], expected(reference[:, empty], second[:, empty]))


def test_geometric_fusion_needs_a_flat_map(random_pair):
    reference, second, transition = random_pair
    with pytest.raises(ValueError, match="flat map"):
        blend(reference, second, transition, fusion_type="geometric")
    flat = np.where(transition > 0, 12, 0).astype(np.uint16)
    assert np.array_equal(blend(reference, second, flat, fusion_type="geometric"), blend(reference, second, flat))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda v, m: blend(v, v[:-1], m), "equal shape"),
        (lambda v, m: blend(v, v.astype(np.float32), m), "uint16"),
        (lambda v, m: blend(v, v), "needs a transition map"),
        (lambda v, m: blend(v, v, m[:-1]), "does not match"),
        (lambda v, m: blend(v, v, m, blending_range=0), "blending_range"),
        (lambda v, m: blend(v, v, m, front_flag=3), "front_flag"),
        (lambda v, m: blend(v, v, m, empty_mask_fill="nan"), "empty_mask_fill"),
        (lambda v, m: blend(v, v, m, fusion_type="median"), "unknown fusion_type"),
    ],
)
def test_invalid_inputs_are_clear_errors(random_pair, call, message):
    reference, _, transition = random_pair
    with pytest.raises(ValueError, match=message):
        call(reference, transition)


def test_wavelet_fusion_without_pywavelets_is_a_clear_error(random_pair, monkeypatch):
    monkeypatch.setitem(sys.modules, "pywt", None)  # as if PyWavelets were not installed
    reference, second, _ = random_pair
    with pytest.raises(ImportError, match="PyWavelets"):
        blend(reference, second, fusion_type="wavelet")


def test_wavelet_fusion_keeps_identical_views_and_the_sharper_details():
    rng = np.random.default_rng(3)
    sharp = rng.integers(100, 3000, size=(2, 231, 250)).astype(np.uint16)  # odd size: the inverse is cropped
    assert np.abs(blend(sharp, sharp, fusion_type="wavelet").astype(int) - sharp).max() <= 1
    # flat views have no details: the fused plane is the mean of the approximations
    low, high = np.full((1, 64, 70), 1000, dtype=np.uint16), np.full((1, 64, 70), 2000, dtype=np.uint16)
    assert (blend(low, high, fusion_type="wavelet", wavelet_level=3) == 1500).all()
    smooth = np.round(ndimage.gaussian_filter(sharp.astype(float), (0, 3, 3))).astype(np.uint16)
    fused = blend(smooth, sharp, fusion_type="wavelet").astype(float)
    assert np.abs(fused - sharp).mean() < np.abs(fused - smooth).mean()


# --- the compiled blend against an independent numpy computation --------------------------------------


def _numpy_blend(reference, second, transition, blending_range, front_flag, fill, first_plane):
    """Front / back by the §3.10 table, the blend zone in float32 from blending_weights, the empty fill."""
    planes = first_plane + reference.shape[0]
    weights = blending_weights(transition, planes, blending_range)[first_plane:]
    front, back = (reference, second) if front_flag == 1 else (second, reference)
    fused = front.astype(np.float32) * np.nan_to_num(weights) + back.astype(np.float32) * (np.float32(1) - np.nan_to_num(weights))
    result = np.clip(np.floor(fused + np.float32(0.5)), 0, 65535).astype(np.uint16)
    empty = {"zero": np.zeros_like(reference), "reference": reference, "max": np.maximum(reference, second)}[fill]
    return np.where(transition == 0, empty, result)


@pytest.mark.parametrize("blending_range", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("front_flag", [1, 2])
@pytest.mark.parametrize("fill", ["zero", "reference", "max"])
def test_compiled_blend_with_intensity_correction_equals_the_numpy_computation(random_pair, blending_range, front_flag, fill):
    reference, second, transition = random_pair
    reference[0, 0, :3], second[0, 0, :3] = (0, 65535, 65534), (65535, 65535, 0)
    for intensity in (None, IntensityCorrection.from_ratio(1.37, method="fixed", background_reference=100.4, background_second=0.6)):
        r, s = reference[4:17].copy(), second[4:17].copy()
        fused = blend(r, s, transition, blending_range=blending_range, front_flag=front_flag, empty_mask_fill=fill, first_plane=4, intensity=intensity)
        r_expected, s_expected = reference[4:17], second[4:17]
        if intensity is not None:
            r_expected = apply_intensity_correction(r_expected, intensity, camera=1)
            s_expected = apply_intensity_correction(s_expected, intensity, camera=2)
        assert np.array_equal(r, r_expected) and np.array_equal(s, s_expected)  # corrected in place
        assert np.array_equal(fused, _numpy_blend(r_expected, s_expected, transition, blending_range, front_flag, fill, 4))


@pytest.mark.parametrize("blending_range", [1, 2, 4, 7])
@pytest.mark.parametrize("front_flag", [1, 2])
@pytest.mark.parametrize("fill", ["zero", "max"])
def test_planes_beyond_the_blend_zone_take_the_front_or_the_back_value_exactly(blending_range, front_flag, fill):
    rng = np.random.default_rng(5)
    reference, second = (rng.integers(0, 65536, (30, 24, 20), dtype=np.uint16) for _ in range(2))
    transition = rng.integers(13, 17, (24, 20)).astype(np.uint16)  # a surface over planes 12-15 (0-based) of 30
    transition[:3] = 0
    zones = blend_zones(transition, 2, 26, blending_range)
    assert zones[0] == ZONE_FRONT and zones[-1] == ZONE_BACK and ZONE_BLEND in zones
    intensity = IntensityCorrection.from_ratio(1.37, method="fixed", background_reference=100.4, background_second=0.6)
    r, s = reference[2:28].copy(), second[2:28].copy()
    fused = blend(r, s, transition, blending_range=blending_range, front_flag=front_flag, empty_mask_fill=fill, first_plane=2, intensity=intensity)
    r_expected = apply_intensity_correction(reference[2:28], intensity, camera=1)
    s_expected = apply_intensity_correction(second[2:28], intensity, camera=2)
    assert np.array_equal(fused, _numpy_blend(r_expected, s_expected, transition, blending_range, front_flag, fill, 2))


def test_a_map_with_nothing_mapped_is_one_zone_of_empty_fill():
    assert blend_zones(np.zeros((4, 5), np.uint16), 0, 3, 4) == [ZONE_FRONT] * 3


def test_blend_corrects_every_uint16_value_as_apply_intensity_correction():
    values = np.arange(65536, dtype=np.uint16).reshape(1, 256, 256)
    empty = np.zeros((256, 256), dtype=np.uint16)  # map 0 everywhere: "max" fill shows both corrected cameras
    for ratio, backgrounds in ((2.5, (0.0, 3.5)), (0.37, (1.0, 1.0)), (1.0, (-2.0, 70000.0))):
        intensity = IntensityCorrection(
            background_reference=max(backgrounds[0], 0), background_second=backgrounds[1], factor=max(ratio, 1 / ratio), flag=2 if ratio > 1 else 1
        )
        reference, second = values.copy(), values[:, ::-1, ::-1].copy()
        blend(reference, second, empty, empty_mask_fill="max", intensity=intensity)
        assert np.array_equal(reference, apply_intensity_correction(values, intensity, camera=1))
        assert np.array_equal(second, apply_intensity_correction(values[:, ::-1, ::-1], intensity, camera=2))
