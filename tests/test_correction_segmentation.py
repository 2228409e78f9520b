import numpy as np
import pytest

from isoview_core.correction.config import CorrectionConfig
from isoview_core.correction.stack_correction import ArraySource, correct_stack
from isoview_core.synthetic import SimulationConfig
from isoview_core.synthetic.camera import dark_frame, render_camera_stack
from isoview_core.synthetic.optics import foreground_mask

SCALING = 2.0 / (6.5 / 16)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


class MaskSink:
    def __init__(self, shape):
        self.mask = np.zeros(shape, dtype=bool)

    def write(self, first_plane, slab, labels=None):
        self.mask[first_plane : first_plane + slab.shape[0]] = labels.astype(bool)


def segment(config: SimulationConfig, camera: int, downsample: int) -> np.ndarray:
    stack = render_camera_stack(config, 0, camera)
    sink = MaskSink(stack.shape)
    correct_stack(
        ArraySource(stack),
        config=CorrectionConfig(segmentation_downsample=downsample),
        scaling=SCALING,
        background_frame=dark_frame(config, camera),
        sink=sink,
    )
    return sink.mask


@pytest.mark.parametrize("camera", [0, 1, 2, 3])
def test_segmentation_matches_ground_truth_foreground(small_config, camera):
    mask = segment(small_config, camera, downsample=4)
    assert dice(mask, foreground_mask(small_config, 0, camera)) >= 0.9


@pytest.mark.parametrize("camera", [0, 1])
def test_reduced_resolution_mask_agrees_with_full_resolution_method(camera):
    config = SimulationConfig(shape=(32, 512, 448), timepoints=1, seed=5)
    full = segment(config, camera, downsample=1)
    assert dice(segment(config, camera, downsample=4), full) >= 0.99
    assert dice(segment(config, camera, downsample=2), full) >= 0.99
