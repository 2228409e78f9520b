"""Shared fixtures of the OME-Zarr tests: a small volume with labels, written with 2 pyramid levels, and helpers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from isoview_core.formats.omezarr import write_ome_zarr

VOXEL = (2.031, 0.406, 0.406)


@pytest.fixture
def volume() -> np.ndarray:
    return np.random.default_rng(4).integers(0, 65536, (20, 13, 10), dtype=np.uint16)


@pytest.fixture
def labels(volume: np.ndarray) -> np.ndarray:
    return (volume > 30000).astype(np.uint8) * 3


def write_labelled(path: Path, volume: np.ndarray, labels: np.ndarray, **options) -> Path:
    """`volume` and its `labels` written to `path` with the fixtures' voxel size and 2 pyramid levels."""
    return write_ome_zarr(path, volume, labels=labels, voxel_size_um=VOXEL, pyramid_levels=2, **options)


@pytest.fixture
def written(tmp_path: Path, volume: np.ndarray, labels: np.ndarray) -> Path:
    return write_labelled(
        tmp_path / "SPM00_TM000012_CM00_CHN00.ome.zarr",
        volume,
        labels,
        attributes={"specimen": 0, "timepoint": 12, "camera": 0, "channel": 0, "wavelength": np.int64(488)},
    )


def reference_mean_2x2(planes: np.ndarray) -> np.ndarray:
    """2x2 means with edge replication, rounded half up, computed in floating point."""
    z, y, x = planes.shape
    padded = np.pad(planes.astype(np.float64), ((0, 0), (0, y % 2), (0, x % 2)), mode="edge")
    blocks = padded.reshape(z, (y + 1) // 2, 2, (x + 1) // 2, 2)
    return np.floor(blocks.mean(axis=(2, 4)) + 0.5).astype(planes.dtype)


def array_metadata(path: Path) -> dict:
    return json.loads((path / "zarr.json").read_text())
