import numpy as np
import pytest

from isoview_core.correction.config import CropBox
from isoview_core.correction.orientation import Orientation


@pytest.mark.parametrize("rotation", [-1, 0, 1])
@pytest.mark.parametrize("flip", [(False, False), (True, False), (False, True)])
def test_raw_coordinates_invert_the_in_plane_orientation(rotation, flip):
    raw = np.random.default_rng(0).integers(0, 65535, (3, 23, 17)).astype(np.uint16)
    orientation = Orientation(crop=CropBox(left=2, top=3, width=11, height=15), rotation=rotation, flip_horizontal=flip[0], flip_vertical=flip[1])
    oriented = orientation.apply(raw)
    assert oriented.shape == orientation.output_shape(raw.shape)
    rows, cols = np.nonzero(np.ones(oriented.shape[1:], bool))
    raw_rows, raw_cols = orientation.raw_coordinates(rows, cols, raw.shape[1:])
    assert np.array_equal(oriented[:, rows, cols], raw[:, raw_rows, raw_cols])


def test_plane_range_of_a_z_crop():
    orientation = Orientation(crop=CropBox(front=5, depth=10))
    assert orientation.plane_range(12) == (5, 12)
    assert orientation.output_shape((12, 4, 4)) == (7, 4, 4)
