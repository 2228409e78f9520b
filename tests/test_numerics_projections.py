"""Maximum projections folded slab by slab equal numpy's maxima of the whole stack."""

from __future__ import annotations

import numpy as np
import pytest

from isoview_core.numerics.projections import MaxProjections


def _expected(volume: np.ndarray) -> dict[str, np.ndarray]:
    return {"xy": volume.max(axis=0), "xz": volume.max(axis=2).T, "yz": volume.max(axis=1).T}


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize(("plane_step", "row_step"), [(16, 40), (3, 7), (5, 40)])
def test_projections_of_slabs_and_row_blocks_equal_the_whole_stacks_maxima(dtype, plane_step, row_step):
    offset = -1000 if np.dtype(dtype).kind == "f" else 0  # all negative: the first slab must replace the zeros
    volume = (np.random.default_rng(2).random((11, 40, 23)) * 250 + offset).astype(dtype)
    projections = MaxProjections(volume.shape, np.dtype(dtype))
    for first_plane in range(0, volume.shape[0], plane_step):
        for first_row in range(0, volume.shape[1], row_step):
            projections.add(first_plane, volume[first_plane : first_plane + plane_step, first_row : first_row + row_step], first_row)
    for name, image in _expected(volume).items():
        np.testing.assert_array_equal(projections.as_dict()[name], image, err_msg=name)


def test_a_nan_voxel_makes_its_projections_nan_as_numpy_does():
    volume = np.random.default_rng(3).random((4, 6, 5)).astype(np.float32)
    volume[2, 3, 1] = np.nan
    projections = MaxProjections(volume.shape, np.dtype(np.float32))
    projections.add(0, volume[:2])
    projections.add(2, volume[2:])
    for name, image in _expected(volume).items():
        np.testing.assert_array_equal(projections.as_dict()[name], image, err_msg=name)  # NaN where numpy has NaN
