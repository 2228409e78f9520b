"""``IsoviewArray`` against the volumes it stacks: the small acquisition corrected and fused once, and a hand-written
root whose two cameras have different depths, widths and z steps."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr
from zarr.storage import LocalStore

from isoview_core.api import IsoviewArray
from isoview_core.config import ProcessingConfig
from isoview_core.errors import LayoutError
from isoview_core.formats.omezarr import ome_zarr_voxel_size, read_ome_zarr, read_ome_zarr_attributes, write_ome_zarr
from isoview_core.layout import FusedPaths, PairId, corrected_paths, output_timepoint_folder
from isoview_core.pipeline.correction import process_dataset
from isoview_core.pipeline.fusion import fuse
from isoview_core.records import load_record

FUSED_PAIRS = (((0, 1), 0, 0), ((2, 3), 90, 1))
"""(cameras, view, channel) of the simulator's two pairs, in the order of IsoviewArray.views."""
CAMERAS = ((0, 0), (1, 0), (2, 1), (3, 1))
"""(camera, channel) of the simulator's four cameras."""


@pytest.fixture(scope="module")
def processed(small_acquisition: Path, tmp_path_factory: pytest.TempPathFactory) -> ProcessingConfig:
    """The shared small acquisition (2 timepoints, 48 x 192 x 160) corrected and fused once, without figures."""
    root = tmp_path_factory.mktemp("array")
    config = ProcessingConfig(
        acquisition=small_acquisition, corrected_dir=root / "corrected", fused_dir=root / "fused", save_diagnostics=False
    )
    process_dataset(config)
    fuse(config)
    return config


def fused_volume(config: ProcessingConfig, timepoint: int, pair: int) -> Path:
    cameras, view, channel = FUSED_PAIRS[pair]
    return FusedPaths(config.resolved_fused_dir(), PairId(0, timepoint, cameras, view, channel)).volume


@pytest.fixture(scope="module")
def fused_truth(processed: ProcessingConfig) -> np.ndarray:
    """Ground truth ``(T, Z, V, Y, X)``: every fused volume read whole with the OME-Zarr reader."""
    return np.stack(
        [np.stack([np.asarray(read_ome_zarr(fused_volume(processed, t, pair))) for pair in (0, 1)], axis=1) for t in (0, 1)]
    )


UNEVEN = {0: ((7, 13, 10), (2.0, 0.5, 0.5)), 1: ((11, 13, 12), (1.5, 0.5, 0.5))}
"""Camera -> (shape, voxel size) of the hand-written root: camera 0 is shallower, narrower and has a larger z step."""


@pytest.fixture(scope="module")
def uneven(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[tuple[int, int], np.ndarray]]:
    """A corrected root with cameras 0 and 1 at timepoint 3 and only camera 1 at timepoint 5, and its volumes."""
    root = tmp_path_factory.mktemp("uneven") / "acquisition.corrected"
    rng = np.random.default_rng(7)
    volumes = {}
    for timepoint, cameras in ((3, (0, 1)), (5, (1,))):
        for camera in cameras:
            shape, voxel = UNEVEN[camera]
            volume = rng.integers(1, 65536, shape, dtype=np.uint16)
            attributes = {"specimen": 0, "timepoint": timepoint, "camera": camera, "channel": 0}
            path = corrected_paths(root, 0, timepoint, camera, 0).volume
            write_ome_zarr(path, volume, labels=volume > 30000, voxel_size_um=voxel, attributes=attributes)
            volumes[(timepoint, camera)] = volume
    return root, volumes


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Path, str]]:
    """Every ``(store root, key)`` that zarr reads from local files while the test runs."""
    recorded: list[tuple[Path, str]] = []
    original = LocalStore.get

    async def get(self, key, prototype=None, byte_range=None):
        recorded.append((Path(str(self.root)), key))
        return await original(self, key, prototype, byte_range)

    monkeypatch.setattr(LocalStore, "get", get)
    return recorded


def test_a_fused_root_stacks_every_pair_of_every_timepoint_like_its_volumes(processed, fused_truth):
    arr = IsoviewArray(processed.resolved_fused_dir())
    assert arr.kind == "fused" and arr.axes == "TZVYX" and arr.ndim == 5
    assert arr.shape == (2, 48, 2, 192, 160) and arr.dtype == np.uint16
    assert arr.timepoints == [0, 1] and arr.views == [(0, 0), (90, 1)] and arr.depths == [48, 48]
    for t in (0, 1):
        for v in (0, 1):
            volume = read_ome_zarr(fused_volume(processed, t, v))
            assert np.array_equal(arr[t, 31, v], volume[31])
            assert np.array_equal(arr[t, :, v], fused_truth[t, :, v])
    assert arr.scales == [ome_zarr_voxel_size(fused_volume(processed, 0, pair)) for pair in (0, 1)]
    assert arr.scales[0] == pytest.approx((2.0, 6.5 / 16, 6.5 / 16))


def test_fusion_parameters_in_the_metadata_are_those_each_record_applied(processed):
    metadata = IsoviewArray(processed.resolved_fused_dir()).metadata
    assert metadata["kind"] == "fused" and metadata["timepoints"] == [0, 1]
    for pair, described in enumerate(metadata["views"]):
        cameras, view, channel = FUSED_PAIRS[pair]
        assert (described["cameras"], described["view"], described["channel"]) == (cameras, view, channel)
        for t in (0, 1):
            record = FusedPaths(processed.resolved_fused_dir(), PairId(0, t, cameras, view, channel)).record
            assert described["fusion_parameters"][t] == json.loads(record.read_text())["applied"]


def test_a_corrected_timepoint_folder_is_z_views_y_x_with_the_records_voxel_sizes_and_xml(processed):
    root = processed.resolved_corrected_dir()
    arr = IsoviewArray(output_timepoint_folder(root, 0, 1))
    assert arr.kind == "corrected" and arr.axes == "ZVYX" and arr.shape == (48, 4, 192, 160)
    assert arr.views == list(CAMERAS) and arr.timepoints == [1]
    paths = [corrected_paths(root, 0, 1, camera, channel) for camera, channel in CAMERAS]
    assert arr.scales == [load_record(path.record).voxel_size_um for path in paths]
    assert np.array_equal(arr[20], np.stack([read_ome_zarr(path.volume)[20] for path in paths]))
    for described, path in zip(arr.metadata["views"], paths, strict=True):
        assert described["attributes"]["xml"] == read_ome_zarr_attributes(path.volume)["xml"]
        assert described["attributes"]["xml"]["z_step"] == "2.000"


@pytest.mark.parametrize(
    "key",
    [
        (1, slice(5, 40, 3), 1),
        (Ellipsis, 7),
        (0, Ellipsis, slice(100, 3, -7), slice(None, None, -1)),
        (-1, slice(None, None, -2), 0, slice(150, 190), slice(-5, None)),
        (slice(None), 47, slice(None), 3, 4),
        (1, 0),
        0,
    ],
    ids=["steps", "ellipsis-first", "negative-steps", "negative-ints", "one-pixel-per-view", "plane-of-both", "timepoint"],
)
def test_indexing_follows_numpy(processed, fused_truth, key):
    arr = IsoviewArray(processed.resolved_fused_dir())
    expected = fused_truth[key]
    got = arr[key]
    assert got.shape == expected.shape and np.array_equal(got, expected)


@pytest.mark.parametrize(
    ("key", "error"),
    [(2, IndexError), ((0, 48), IndexError), ((0,) * 6, IndexError), ([0, 1], TypeError), ((..., ...), IndexError)],
)
def test_indices_it_does_not_take_are_errors(processed, key, error):
    with pytest.raises(error):
        IsoviewArray(processed.resolved_fused_dir())[key]


def test_views_of_different_depths_are_padded_with_zeros_and_missing_volumes_read_as_zeros(uneven):
    root, volumes = uneven
    arr = IsoviewArray(root)
    assert arr.shape == (2, 11, 2, 13, 12) and arr.timepoints == [3, 5] and arr.views == [(0, 0), (1, 0)]
    assert arr.depths == [7, 11] and arr.scales == [UNEVEN[0][1], UNEVEN[1][1]]
    stack = arr[0]
    assert np.array_equal(stack[:7, 0, :, :10], volumes[(3, 0)])
    assert not stack[7:, 0].any() and not stack[:, 0, :, 10:].any()
    assert np.array_equal(stack[:, 1], volumes[(3, 1)])
    assert np.array_equal(arr[0, 9, 1], volumes[(3, 1)][9]) and not arr[0, 9, 0].any()
    assert not arr[1, :, 0].any() and np.array_equal(arr[1, :, 1], volumes[(5, 1)])


def test_a_view_alone_is_unpadded_with_its_own_scale(uneven):
    root, volumes = uneven
    camera0 = IsoviewArray(root).view(0)
    assert camera0.axes == "TZYX" and camera0.shape == (2, 7, 13, 10) and camera0.scales == [UNEVEN[0][1]]
    assert camera0.views == [(0, 0)] and camera0.depths == [7]
    assert np.array_equal(np.asarray(camera0)[0], volumes[(3, 0)])
    assert np.array_equal(camera0[0, ::-3, 4], volumes[(3, 0)][::-3, 4])


def test_reading_one_plane_of_one_view_reads_only_that_planes_shard(processed, reads):
    arr = IsoviewArray(processed.resolved_fused_dir())
    volume = fused_volume(processed, 1, 1)
    shard_depth = read_ome_zarr(volume).shards[0]
    reads.clear()
    plane = arr[1, 20, 1]
    assert np.array_equal(plane, read_ome_zarr(volume)[20])
    assert reads and {store for store, _ in reads} == {volume}, "read outside the selected view's volume"
    assert {key for _, key in reads if "/c/" in key} == {f"0/c/{20 // shard_depth}/0/0"}


def test_planes_past_a_views_depth_are_zeros_without_any_read(uneven, reads):
    root, _ = uneven
    arr = IsoviewArray(root)
    reads.clear()
    assert not arr[0, 9, 0].any()
    assert reads == []
    arr[0, 9]
    assert {store for store, _ in reads} == {corrected_paths(root, 0, 3, 1, 0).volume}


def test_to_dask_is_the_same_stack(uneven, processed, fused_truth):
    pytest.importorskip("dask")
    root, _ = uneven
    arr = IsoviewArray(root)
    lazy = arr.to_dask()
    assert lazy.shape == arr.shape and lazy.dtype == arr.dtype
    assert np.array_equal(lazy.compute(), np.asarray(arr))
    assert np.array_equal(arr.view(1).to_dask()[1].compute(), arr[1, :, 1])
    fused = IsoviewArray(output_timepoint_folder(processed.resolved_fused_dir(), 0, 1)).to_dask()
    assert fused.chunksize == (1, 1, 192, 160)
    assert np.array_equal(fused[20:23, 1].compute(), fused_truth[1, 20:23, 1])


def test_to_dask_without_dask_names_the_package(uneven, monkeypatch):
    monkeypatch.setitem(sys.modules, "dask", None)
    monkeypatch.setitem(sys.modules, "dask.array", None)
    with pytest.raises(ImportError, match="'dask' package"):
        IsoviewArray(uneven[0]).to_dask()


def test_labels_and_projections_are_the_files_beside_each_volume(processed):
    corrected = IsoviewArray(processed.resolved_corrected_dir())
    paths = corrected_paths(processed.resolved_corrected_dir(), 0, 1, 2, 1)
    labels = np.asarray(corrected.get_labels(1, 2))
    assert np.array_equal(labels, zarr.open_array(paths.volume / "labels" / "segmentation" / "0", mode="r")[:])
    assert np.array_equal(labels.max(axis=0), tifffile.imread(paths.projection("xy", mask=True)))
    assert np.array_equal(corrected.get_projection(1, 2, "yz"), tifffile.imread(paths.projection("yz")))
    fused = IsoviewArray(processed.resolved_fused_dir())
    projection = FusedPaths(processed.resolved_fused_dir(), PairId(0, 0, (2, 3), 90, 1)).projection("xz")
    assert np.array_equal(fused.get_projection(0, 90, "xz"), tifffile.imread(projection))
    assert np.array_equal(fused.get_projection(0, 90), fused[0, :, 1].max(axis=0))


def test_labels_and_projections_of_what_is_not_there_are_clear_errors(processed):
    corrected = IsoviewArray(processed.resolved_corrected_dir())
    with pytest.raises(ValueError, match="timepoint 7"):
        corrected.get_labels(7, 0)
    with pytest.raises(ValueError, match="no camera 5"):
        corrected.get_projection(0, 5)
    with pytest.raises(ValueError, match="proj_type"):
        corrected.get_projection(0, 0, "zx")


def test_a_specimen_folder_opens_as_its_root_and_a_folder_without_volumes_is_a_layout_error(uneven, tmp_path):
    root, volumes = uneven
    specimen_folder = output_timepoint_folder(root, 0, 3).parent
    arr = IsoviewArray(specimen_folder)
    assert arr.root == root and arr.timepoints == [3, 5] and np.array_equal(arr[1, :, 1], volumes[(5, 1)])
    with pytest.raises(LayoutError, match="no OME-Zarr volumes of specimen 1"):
        IsoviewArray(root, specimen=1)
    with pytest.raises(LayoutError, match="no such folder"):
        IsoviewArray(tmp_path / "missing")


def test_repr_says_what_it_is(processed):
    text = repr(IsoviewArray(processed.resolved_fused_dir()))
    assert text.startswith("IsoviewArray(fused, shape=(2, 48, 2, 192, 160), axes='TZVYX'")
    assert "views=[(0, 0), (90, 1)]" in text and "timepoints=0..1 (2)" in text
