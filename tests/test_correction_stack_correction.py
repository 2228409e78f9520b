import numpy as np
import pytest

from isoview_core.correction.config import CorrectionConfig, CropBox
from isoview_core.correction.orientation import Orientation
from isoview_core.correction.stack_correction import STREAMED_PLANES, ArraySource, correct_stack
from isoview_core.synthetic.camera import dark_frame, render_camera_stack


class CollectingSink:
    def __init__(self, shape):
        self.volume = np.zeros(shape, np.uint16)
        self.labels = np.zeros(shape, np.uint8)
        self.starts = []

    def write(self, first_plane, slab, labels=None):
        self.starts.append(first_plane)
        self.volume[first_plane : first_plane + slab.shape[0]] = slab
        if labels is not None:
            self.labels[first_plane : first_plane + slab.shape[0]] = labels


@pytest.fixture(scope="module")
def raw(small_config):
    return render_camera_stack(small_config, 0, 0), dark_frame(small_config, 0)


def run(raw, **options):
    stack, frame = raw
    orientation = options.pop("orientation", Orientation())
    sink = CollectingSink(orientation.output_shape(stack.shape))
    result = correct_stack(ArraySource(stack), config=CorrectionConfig(**options), scaling=4.92, background_frame=frame, sink=sink, orientation=orientation)
    return result, sink


@pytest.mark.parametrize("mode", ["dark frame", "estimate", "none"])
def test_subtracted_background_is_the_dark_frame_or_the_estimated_offset(raw, small_config, mode):
    stack, frame = raw
    result, sink = run(
        (stack, None if mode == "estimate" else frame),
        apply_segmentation_mask=False,
        background_subtraction="none" if mode == "none" else "auto",
    )
    assert result.background_source == ("estimate" if mode == "estimate" else "image")
    # The scalar background (3rd percentile of the dark frame, or 5th of the stack) sits 1-3 read noises below the offset.
    offset, noise = small_config.background_levels_adu[0], small_config.read_noise_adu[0]
    assert offset - 3 * noise < result.background_value < offset - noise
    # Away from the pixels flagged (and replaced) as defective, exactly the dark frame or the scalar is subtracted.
    subtracted = {"dark frame": frame.astype(np.int32), "estimate": np.floor(result.background_value + 0.5), "none": 0}[mode]
    expected = np.clip(stack - subtracted, 0, None)
    clean = ~result.defects.mask
    assert np.array_equal(sink.volume[:, clean], expected[:, clean])


def test_masked_output_is_zero_outside_the_mask_and_unchanged_inside(raw):
    _, masked = run(raw)
    _, unmasked = run(raw, apply_segmentation_mask=False)
    inside = masked.labels.astype(bool)
    assert 0.05 < inside.mean() < 0.95  # both sides of the mask are exercised
    assert np.all(masked.volume[~inside] == 0)
    assert np.array_equal(masked.volume[inside], unmasked.volume[inside])


def test_result_does_not_depend_on_slab_size(raw):
    first, a = run(raw, slab_planes=16)
    second, b = run(raw, slab_planes=5)
    assert np.array_equal(a.volume, b.volume) and np.array_equal(a.labels, b.labels)
    assert first.min_intensity == second.min_intensity
    assert a.starts == b.starts == list(range(0, raw[0].shape[0], STREAMED_PLANES))  # the correcting pass streams planes


@pytest.mark.parametrize("crop", [None, CropBox(top=1, height=189, width=157)], ids=["whole", "odd-shape"])
def test_projections_and_coordinate_masks_match_direct_computation(raw, crop):
    result, sink = run(raw, orientation=Orientation(crop=crop))
    volume, mask = sink.volume, sink.labels.astype(bool)
    assert np.array_equal(result.projections["xy"], volume.max(axis=0))
    assert np.array_equal(result.projections["xz"], volume.max(axis=2).T)  # (y, z): max over columns
    assert np.array_equal(result.projections["yz"], volume.max(axis=1).T)  # (x, z): max over rows
    assert np.array_equal(result.mask_projections["xy"], mask.max(axis=0))
    planes = np.arange(1, volume.shape[0] + 1)[:, None, None]
    count = mask.sum(axis=0)
    expected_xy = np.where(count > 0, np.floor((mask * planes).sum(axis=0) / np.maximum(count, 1) + 0.5), 0)
    assert np.array_equal(result.coordinate_masks["xy"], expected_xy.astype(np.uint16))
    columns = np.arange(1, volume.shape[2] + 1)
    count = mask.sum(axis=2)
    expected_xz = np.where(count > 0, np.floor((mask * columns).sum(axis=2) / np.maximum(count, 1) + 0.5), 0).T
    assert np.array_equal(result.coordinate_masks["xz"], expected_xz.astype(np.uint16))


def test_min_intensity_record_ends_with_the_background_of_the_unmasked_stack(raw):
    segmented, _ = run(raw)
    unsegmented, _ = run(raw, segment=False)
    # [mask_min, stack background] with a mask, the background alone without one; masking does not change it.
    # (Values against the simulator's truth: test_pipeline_correction.)
    assert segmented.min_intensity_record == [segmented.threshold.mask_min, unsegmented.min_intensity]
    assert unsegmented.min_intensity_record == [unsegmented.min_intensity]


def test_crop_rotation_and_flip_are_applied_at_read_time(raw):
    orientation = Orientation(crop=CropBox(left=10, top=20, front=4, width=100, height=120, depth=30), rotation=1, flip_horizontal=True)
    _, sink = run(raw, orientation=orientation, median_kernel=None, segment=False, background_subtraction="none")
    expected = np.rot90(raw[0][4:34, 20:140, 10:110], k=-1, axes=(1, 2))[:, :, ::-1]
    assert sink.volume.shape == (30, 100, 120)
    assert np.array_equal(sink.volume, expected)


def test_wrong_shape_background_frame_is_a_clear_error(raw):
    stack, frame = raw
    with pytest.raises(ValueError, match="does not match the camera planes"):
        correct_stack(ArraySource(stack), background_frame=frame[:-1])
