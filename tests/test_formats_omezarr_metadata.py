"""NGFF 0.5 metadata (isoview_core.formats.omezarr.metadata): what is written, read by this package and by others."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr
from ome_zarr_models.v05.image import ImageAttrs
from omezarr_helpers import VOXEL, array_metadata, labels, volume, written  # noqa: F401 (fixtures)

from isoview_core.errors import FormatError
from isoview_core.formats.omezarr import (
    ome_zarr_voxel_size,
    read_ome_zarr,
    read_ome_zarr_attributes,
)
from isoview_core.formats.omezarr.metadata import (
    image_attributes,
    image_label_attributes,
    labels_attributes,
    ome_json,
)


def test_metadata_voxel_sizes_and_attributes(written: Path) -> None:
    assert ome_zarr_voxel_size(written) == VOXEL
    assert ome_zarr_voxel_size(written, 2) == (VOXEL[0], VOXEL[1] * 4, VOXEL[2] * 4)
    assert read_ome_zarr_attributes(written) == {
        "specimen": 0,
        "timepoint": 12,
        "camera": 0,
        "channel": 0,
        "wavelength": 488,
    }
    ome = array_metadata(written)["attributes"]["ome"]
    assert ome["version"] == "0.5"
    (multiscale,) = ome["multiscales"]
    assert multiscale["name"] == "SPM00_TM000012_CM00_CHN00"
    assert multiscale["axes"] == [{"name": a, "type": "space", "unit": "micrometer"} for a in "zyx"]
    assert [d["path"] for d in multiscale["datasets"]] == ["0", "1", "2"]
    labels_ome = array_metadata(written / "labels")["attributes"]["ome"]
    assert labels_ome == {"version": "0.5", "labels": ["segmentation"]}
    image_label = array_metadata(written / "labels" / "segmentation")["attributes"]["ome"]
    assert image_label["image-label"]["source"] == {"image": "../../"}
    assert array_metadata(written / "0")["dimension_names"] == ["z", "y", "x"]


def test_independent_reader_ome_zarr_py(written: Path, volume: np.ndarray) -> None:
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Label, Multiscales, Reader

    location = parse_url(str(written))
    assert location is not None and location.version == "0.5"
    nodes = list(Reader(location)())
    image = nodes[0]
    assert any(isinstance(spec, Multiscales) for spec in image.specs)
    assert [tuple(level.shape) for level in image.data] == [(20, 13, 10), (20, 7, 5), (20, 4, 3)]
    np.testing.assert_array_equal(np.asarray(image.data[0]), volume)
    scales = [t[0]["scale"] for t in image.metadata["coordinateTransformations"]]
    assert scales == [[VOXEL[0], VOXEL[1] * 2**k, VOXEL[2] * 2**k] for k in range(3)]
    label_nodes = [node for node in nodes if any(isinstance(spec, Label) for spec in node.specs)]
    assert len(label_nodes) == 1
    assert label_nodes[0].metadata["name"] == "segmentation"
    assert [tuple(level.shape) for level in label_nodes[0].data] == [(20, 13, 10), (20, 7, 5), (20, 4, 3)]


def test_validates_against_ngff_05_models(written: Path) -> None:
    from ome_zarr_models import open_ome_zarr
    from ome_zarr_models.v05 import Image, ImageLabel

    image = Image.from_zarr(zarr.open_group(str(written), mode="r"))
    assert image.ome_attributes.version == "0.5"
    assert len(image.datasets[0]) == 3
    assert image.labels is not None and image.labels.label_paths == ["segmentation"]
    label = open_ome_zarr(zarr.open_group(str(written / "labels" / "segmentation"), mode="r"))
    assert isinstance(label, ImageLabel)


def test_metadata_is_the_typed_models_json(written: Path) -> None:
    root = array_metadata(written)["attributes"]["ome"]
    assert ImageAttrs.model_validate(root) == image_attributes("SPM00_TM000012_CM00_CHN00", VOXEL, 2)
    assert root == ome_json(image_attributes("SPM00_TM000012_CM00_CHN00", VOXEL, 2))
    assert root["multiscales"][0]["type"] == "local_mean"
    labels_root = array_metadata(written / "labels")["attributes"]["ome"]
    assert labels_root == ome_json(labels_attributes(["segmentation"]))
    image_label = array_metadata(written / "labels" / "segmentation")["attributes"]["ome"]
    assert image_label == ome_json(image_label_attributes("segmentation", VOXEL, 2))
    assert image_label["multiscales"][0]["type"] == "nearest"


def test_invalid_metadata_is_named_at_the_boundary(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ome.zarr"
    zarr.create_group(str(bad), zarr_format=3, attributes={"ome": {"version": "0.5", "multiscales": [{"axes": []}]}})
    with pytest.raises(FormatError, match="invalid OME-Zarr 0.5 image metadata"):
        read_ome_zarr(bad)
