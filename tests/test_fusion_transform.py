import math

import numpy as np
import pytest

from isoview_core.fusion.transform import (
    keys_cubic_weights,
    transform_plane,
    transform_volume,
)

RNG = np.random.default_rng(7)


def smooth_image(shape, dtype=np.float64):
    rows, cols = np.indices(shape, dtype=np.float64)
    image = 1000 + 400 * np.sin(2 * np.pi * rows / 37.0) * np.cos(2 * np.pi * cols / 53.0) + 2.0 * rows
    return image.astype(dtype)


def general_path(plane, offset_y, offset_x, **options):
    """The rotation (per-pixel gather) path at an angle whose effect is far below 1e-6 px."""
    return transform_plane(plane, offset_y, offset_x, 1e-12, **options)


# --- interpolation kernel -----------------------------------------------------------------


@pytest.mark.parametrize("d", [0.0, 0.13, 0.5, 0.77, 0.999])
def test_keys_weights_partition_unity_and_reproduce_quadratics(d):
    weights = np.array(keys_cubic_weights(d))
    samples = np.array([-1.0, 0.0, 1.0, 2.0])
    assert weights.sum() == pytest.approx(1.0)
    assert weights @ samples == pytest.approx(d)
    assert weights @ samples**2 == pytest.approx(d**2)
    if d == 0.0:
        np.testing.assert_array_equal(weights, [0, 1, 0, 0])


# --- translation ----------------------------------------------------------------------------


@pytest.mark.parametrize("offset", [(0, 0), (3, -5), (-7, 2), (12, 0)])
def test_integer_shifts_are_exact_with_zero_outside(offset):
    plane = RNG.integers(0, 65535, (40, 33)).astype(np.uint16)
    oy, ox = offset
    shifted = transform_plane(plane, oy, ox)
    expected = np.zeros_like(plane)
    expected[max(0, oy) : 40 + min(0, oy), max(0, ox) : 33 + min(0, ox)] = plane[max(0, -oy) : 40 - max(0, oy), max(0, -ox) : 33 - max(0, ox)]
    np.testing.assert_array_equal(shifted, expected)
    np.testing.assert_array_equal(transform_plane(plane, oy, ox, order="nearest"), expected)


def test_subpixel_shift_of_a_smooth_image_matches_the_analytic_shift():
    shape = (80, 96)
    image = smooth_image(shape)
    oy, ox = 2.3, -1.65
    shifted = transform_plane(image, oy, ox)
    rows, cols = np.indices(shape, dtype=np.float64)
    analytic = 1000 + 400 * np.sin(2 * np.pi * (rows - oy) / 37.0) * np.cos(2 * np.pi * (cols - ox) / 53.0) + 2.0 * (rows - oy)
    interior = (slice(5, -5), slice(5, -5))
    assert np.max(np.abs(shifted[interior] - analytic[interior])) < 1.5  # 0.4 % of the 400 amplitude
    quadratic = 3 * rows**2 - 2 * rows * cols + 0.5 * cols**2
    moved = transform_plane(quadratic, oy, ox)
    expected = 3 * (rows - oy) ** 2 - 2 * (rows - oy) * (cols - ox) + 0.5 * (cols - ox) ** 2
    np.testing.assert_allclose(moved[interior], expected[interior], rtol=0, atol=1e-8)  # Keys a=-1/2 is exact on quadratics


def test_out_of_frame_pixels_are_zero_or_clamped_on_request():
    plane = RNG.integers(100, 1000, (20, 30)).astype(np.uint16)
    shifted = transform_plane(plane, 4.5, -3.25)
    assert not shifted[:5].any()  # r - 4.5 < 0 for rows 0..4
    assert not shifted[:, -4:].any()  # c + 3.25 > 29 for the last 4 columns
    assert shifted[5:, :-4].all()
    clamped = transform_plane(plane.astype(np.float64), 4.5, -3.25, outside=None)
    # rows 0..4 sample above the frame: the clamped samples are row 0's, columns 2..5 around c + 3.25
    np.testing.assert_allclose(clamped[:3, 0], np.dot(keys_cubic_weights(0.25), plane[0, 2:6]))
    filled = transform_plane(plane, 4.5, -3.25, outside=7)
    assert (filled[:5] == 7).all()


def test_uint16_output_is_rounded_half_away_and_saturated():
    plane = np.zeros((6, 6), dtype=np.uint16)
    plane[:, 3:] = 65535
    shifted = transform_plane(plane, 0, 0.5)  # a step overshoots with a = -1/2
    assert shifted.dtype == np.uint16
    float_result = transform_plane(plane.astype(np.float64), 0, 0.5)
    assert float_result.max() > 65535 and float_result.min() < 0
    np.testing.assert_array_equal(shifted, np.clip(np.floor(float_result + 0.5), 0, 65535).astype(np.uint16))


@pytest.mark.parametrize("outside", [0.0, None])
@pytest.mark.parametrize("offset", [(2.3, -1.65), (-6.5, 4.0), (0.0, 0.25), (31.2, -0.5)])
def test_separable_fast_path_equals_the_general_path(offset, outside):
    shape = (48, 57)
    image = smooth_image(shape) + RNG.normal(0, 30, shape)
    rows, cols = np.indices(shape)
    source_r, source_c = rows - offset[0], cols - offset[1]
    # sources exactly on the frame border are inside for one path and 1e-12 px outside for the other
    on_border = np.isclose(source_r, 0) | np.isclose(source_r, shape[0] - 1) | np.isclose(source_c, 0) | np.isclose(source_c, shape[1] - 1)
    compared = ~on_border if outside is not None else np.ones(shape, dtype=bool)
    fast = transform_plane(image, *offset, outside=outside)
    general = general_path(image, *offset, outside=outside)
    np.testing.assert_allclose(fast[compared], general[compared], rtol=0, atol=1e-6)
    labels = RNG.integers(0, 5, shape).astype(np.uint8)
    tie = np.isclose(source_r % 1, 0.5) | np.isclose(source_c % 1, 0.5)  # exact halves: the 1e-12 px decides
    nearest = transform_plane(labels, *offset, order="nearest", outside=outside)
    general_nearest = general_path(labels, *offset, order="nearest", outside=outside)
    np.testing.assert_array_equal(nearest[compared & ~tie], general_nearest[compared & ~tie])


# --- rotation and nearest neighbour --------------------------------------------------------


def test_rotation_turns_about_the_plane_centre():
    plane = RNG.normal(0, 1, (31, 31))
    np.testing.assert_allclose(transform_plane(plane, 0, 0, 90.0, outside=None), np.rot90(plane, 1), atol=1e-9)
    shape = (64, 80)
    rows, cols = np.indices(shape, dtype=np.float64)
    blob_at = np.array([20.0, 62.0])
    blob = np.exp(-((rows - blob_at[0]) ** 2 + (cols - blob_at[1]) ** 2) / (2 * 2.5**2))
    theta = math.radians(12.0)
    rotated = transform_plane(blob, 1.5, -2.0, 12.0)
    centre = np.array([(shape[0] - 1) / 2, (shape[1] - 1) / 2])
    rotation = np.array([[math.cos(theta), math.sin(theta)], [-math.sin(theta), math.cos(theta)]])
    expected = rotation.T @ (blob_at - centre + np.array([1.5, -2.0])) + centre  # R(x - c) + c - o = blob
    centroid = np.array([(rows * rotated).sum(), (cols * rotated).sum()]) / rotated.sum()
    np.testing.assert_allclose(centroid, expected, atol=0.02)


def test_nearest_neighbour_keeps_labels_and_rounds_half_up():
    labels = RNG.integers(0, 4, (25, 30)).astype(np.uint16)
    up = transform_plane(labels, 0.5, 0.0, order="nearest")  # s = r - 0.5 -> index r
    np.testing.assert_array_equal(up[1:], labels[1:])
    assert not up[0].any()
    down = transform_plane(labels, -0.5, 0.0, order="nearest")  # s = r + 0.5 -> index r + 1
    np.testing.assert_array_equal(down[:-1], labels[1:])
    rotated = transform_plane(labels, 3.3, -2.7, 7.0, order="nearest")
    assert set(np.unique(rotated)) <= set(np.unique(labels)) | {0}
    mask = labels > 1
    moved_mask = transform_plane(mask, 3.3, -2.7, 7.0, order="nearest")
    assert moved_mask.dtype == np.bool_
    np.testing.assert_array_equal(moved_mask, rotated > 1)


def test_transform_volume_applies_the_plane_transform_to_every_plane():
    volume = RNG.integers(0, 4000, (3, 22, 27)).astype(np.uint16)
    for rotation in (0.0, 1.7):
        out = np.empty_like(volume)
        result = transform_volume(volume, 1.25, -3.5, rotation, out=out)
        assert result is out
        for z in range(3):
            np.testing.assert_array_equal(out[z], transform_plane(volume[z], 1.25, -3.5, rotation))


def test_transform_rejects_bad_input():
    volume = np.zeros((2, 5, 5), dtype=np.uint16)
    with pytest.raises(ValueError, match="Z, Y, X"):
        transform_volume(volume[0], 1, 1)
    with pytest.raises(ValueError, match="Y, X"):
        transform_plane(volume, 1, 1)
    with pytest.raises(ValueError, match="order"):
        transform_volume(volume, 1, 1, order="linear")
    with pytest.raises(ValueError, match="share memory"):
        transform_volume(volume, 1, 1, out=volume)
    with pytest.raises(ValueError, match="out has shape"):
        transform_volume(volume, 1, 1, out=np.empty((2, 5, 5), np.float32))
    with pytest.raises(ValueError, match="bool"):
        transform_volume(volume.astype(bool), 1, 1)
    with pytest.raises(ValueError, match="non-finite"):
        transform_volume(volume, math.nan, 1)


# --- the compiled translation against an independent numpy computation ---------------------------


def _separable_reference(plane, offset_y, offset_x, outside):
    """θ = 0 with scipy / numpy: correlate1d along the rows (clamped samples), 4-tap row pass, round, saturate, fill."""
    from scipy import ndimage

    height, width = plane.shape
    row_shift, col_shift = math.floor(-offset_y), math.floor(-offset_x)
    row_fraction, col_fraction = -offset_y - row_shift, -offset_x - col_shift
    cols = np.clip(np.arange(-1, width + 2) + col_shift, 0, width - 1)
    gathered = plane[:, cols]
    if col_fraction:
        columns = ndimage.correlate1d(gathered, np.array(keys_cubic_weights(col_fraction)), axis=1, output=np.float64, mode="nearest", origin=-1)
    else:
        columns = gathered.astype(np.float64)
    columns = columns[:, 1 : 1 + width]
    taps = [0, 1, 2, 3] if row_fraction else [1]
    weights = keys_cubic_weights(row_fraction) if row_fraction else (0.0, 1.0)
    values = None
    for tap in taps:
        rows = np.clip(np.arange(height) + row_shift - 1 + tap, 0, height - 1)
        term = columns[rows] * weights[tap] if row_fraction else columns[rows]
        values = term if values is None else values + term
    if np.issubdtype(plane.dtype, np.integer):
        info = np.iinfo(plane.dtype)
        values = np.clip(np.sign(values) * np.floor(np.abs(values) + 0.5), info.min, info.max)
    result = values.astype(plane.dtype)
    if outside is not None:
        rows, cols = np.indices(plane.shape)
        source_r, source_c = rows - offset_y, cols - offset_x
        result[(source_r < 0) | (source_r > height - 1) | (source_c < 0) | (source_c > width - 1)] = outside
    return result


@pytest.mark.parametrize("dtype", [np.uint16, np.int16, np.uint8, np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (2, 7), (13, 29), (31, 4)])
@pytest.mark.parametrize("offset", [(0.3, -1.7), (2.0, 0.5), (0.0, 3.25), (-4.5, 0.0), (-6.5, 7.75), (40.2, -0.5), (0.5, -100.5)])
@pytest.mark.parametrize("outside", [0.0, None])
def test_compiled_translation_equals_the_numpy_computation_bit_for_bit(dtype, shape, offset, outside):
    rng = np.random.default_rng(abs(hash((shape, offset))) % 2**32)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        plane = rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)
        plane.flat[: min(4, plane.size)] = [info.max, info.min, info.max, info.min][: min(4, plane.size)]  # overshoots saturate
    else:
        plane = rng.normal(0, 1000, shape).astype(dtype)
    for view in (plane, plane[::-1, ::-1]):  # flipped views are read in place
        expected = _separable_reference(np.ascontiguousarray(view), *offset, outside)
        np.testing.assert_array_equal(transform_plane(view, *offset, outside=outside), expected)
        transposed = np.empty(view.shape[::-1], dtype).T  # an output with other strides
        transform_volume(view[np.newaxis], *offset, outside=outside, out=transposed[np.newaxis])
        np.testing.assert_array_equal(transposed, expected)
