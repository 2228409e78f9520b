"""Live time series: one NGFF 0.5 image ``(t, z, y, x)`` per view (or camera) and channel, grown timepoint by timepoint.

A viewer opens ``<fused root>/SPM00_VW00_CHN00.ome.zarr`` (:func:`isoview_core.layout.fused_series_path`) as
one movie while the acquisition is recorded. The series has the per-timepoint volumes' arrays with one more
axis in front: chunk grid ``(1, *chunks)`` and, when sharded, inner chunks ``(1, *inner)``, with the same
codecs. A timepoint's shard files are therefore byte for byte the per-timepoint volume's: appending links them
(``os.link``, no second copy on disk) or copies them where links are impossible, and never recompresses.

Publication order, so that a kill at any point leaves a series that readers open and the next append repairs:

1. an exclusive lock on ``<series>/.isoview.lock`` (parallel workers append other timepoints of the same series);
2. a timepoint being rewritten (a rerun) is first withdrawn from ``isoview.timepoints``;
3. its shard files are linked or copied under temporary names and renamed into ``<level>/c/<t>/...``, durably;
4. each level's ``zarr.json`` grows to ``shape[0] = max(T, t + 1)``, atomically;
5. the group's ``zarr.json`` lists the timepoint with the fingerprint of the record it came from.

``isoview.timepoints`` (timepoint -> fingerprint) says which timepoints are published; indices never appended
read as zeros (the fill value). :func:`stale_timepoints` compares it with the records on disk, so a rerun
timepoint, or one a kill interrupted, is appended again. The time axis' scale is the median interval between
the XML timestamps of the published timepoints (1 s until two are known); OMERO rendering metadata gives
viewers a contrast window from the first timepoint's data, so that they do not open it saturated.

References
----------
OME-NGFF 0.5 (https://ngff.openmicroscopy.org/0.5/): multiscales, axes of type ``time``, ``omero``;
zarr v3 specification, ``sharding_indexed`` codec.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import statistics
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from ome_zarr_models.common.omero import Channel, Omero, Window
from ome_zarr_models.v05.axes import Axis
from ome_zarr_models.v05.image import ImageAttrs
from ome_zarr_models.v05.multiscales import Dataset, Multiscale

from isoview_core.errors import FormatError
from isoview_core.formats.atomic import PARTIAL_MARKER, fsync_enabled, make_durable, write_text_atomically
from isoview_core.formats.locks import exclusive_lock
from isoview_core.formats.omezarr.metadata import ATTRIBUTES_KEY, NGFF_VERSION, ome_json
from isoview_core.formats.omezarr.reader import read_ome_zarr_planes

__all__ = ["append_timepoint", "published_timepoints", "record_fingerprint", "remove_partial_files", "stale_timepoints"]

LOCK_NAME = ".isoview.lock"
"""Lock file inside a series, held while it is appended to."""
CONTRAST_PERCENTILES = (0.5, 99.9)
"""OMERO window of a series: these percentiles of the non-zero voxels of its first timepoint's sampled planes."""
CONTRAST_PLANES = 5
"""Planes (evenly spaced) of the first timepoint sampled for the contrast window."""
DEFAULT_INTERVAL_S = 1.0
"""Time scale of a series until two published timepoints have XML timestamps."""


def record_fingerprint(record: Path) -> str:
    """Identity of the record a timepoint was published from: a rerun writes a new record, hence a new fingerprint."""
    return hashlib.sha256(Path(record).read_bytes()).hexdigest()[:16]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise FormatError(f"{path}: unreadable zarr metadata ({error})") from error


def _write_json(path: Path, document: Mapping[str, Any]) -> None:
    write_text_atomically(path, json.dumps(document, indent=2))


def published_timepoints(series: Path) -> dict[int, str]:
    """Timepoint -> fingerprint of every timepoint published in `series` (empty when it does not exist yet)."""
    group = Path(series) / "zarr.json"
    if not group.is_file():
        return {}
    published = _read_json(group)["attributes"][ATTRIBUTES_KEY].get("timepoints", {})
    return {int(timepoint): fingerprint for timepoint, fingerprint in published.items()}


def stale_timepoints(series: Path, records: Mapping[int, Path]) -> list[int]:
    """Timepoints whose record (timepoint -> record path) is not what `series` published: new, rerun or interrupted."""
    published = published_timepoints(series)
    return sorted(timepoint for timepoint, record in records.items() if published.get(timepoint) != record_fingerprint(record))


def remove_partial_files(series: Path) -> list[Path]:
    """Remove the temporary files a killed append left in `series` (chunks and metadata being placed); the files removed.

    Taken under the series' lock, so an append in progress elsewhere is never touched.
    """
    series = Path(series)
    if not series.is_dir():
        return []
    with exclusive_lock(series / LOCK_NAME):
        removed = [path for path in series.rglob(f"*{PARTIAL_MARKER}*") if path.is_file()]
        for path in removed:
            path.unlink()
    return removed


def _series_array(volume_array: Mapping[str, Any], timepoints: int) -> dict[str, Any]:
    """A volume array's zarr metadata with a time axis of `timepoints` in front (chunks and inner chunks of one timepoint)."""
    array = json.loads(json.dumps(volume_array))
    array["shape"] = [timepoints, *array["shape"]]
    grid = array["chunk_grid"]["configuration"]
    grid["chunk_shape"] = [1, *grid["chunk_shape"]]
    for codec in array["codecs"]:
        if codec["name"] == "sharding_indexed":
            codec["configuration"]["chunk_shape"] = [1, *codec["configuration"]["chunk_shape"]]
    array["dimension_names"] = ["t", *(array.get("dimension_names") or ["z", "y", "x"])]
    return array


def _check_compatible(series_array: Mapping[str, Any], expected: Mapping[str, Any], volume: Path, series: Path) -> None:
    """Raise when a volume's array cannot become a timepoint of the series (other shape, type, chunks or codecs)."""
    keys = ("data_type", "chunk_grid", "chunk_key_encoding", "codecs", "fill_value")
    if series_array["shape"][1:] != expected["shape"][1:] or any(series_array.get(key) != expected.get(key) for key in keys):
        raise FormatError(
            f"{volume}: shape {expected['shape'][1:]} / type / chunks / codecs differ from the time series {series} "
            f"(shape {series_array['shape'][1:]}); rebuild the series (remove it) after changing the output settings"
        )


def _chunk_files(array_dir: Path) -> dict[Path, Path]:
    """Relative chunk key (under ``c/``) -> file, for every chunk file of an array."""
    chunks = array_dir / "c"
    if not chunks.is_dir():
        return {}
    return {path.relative_to(chunks): path for path in chunks.rglob("*") if path.is_file() and PARTIAL_MARKER not in path.name}


def _place(source: Path, target: Path, *, link: bool) -> None:
    """Put `source` at `target` (replacing it) through a temporary name: a hard link when asked and possible, else a copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f"{target.name}{PARTIAL_MARKER}{secrets.token_hex(4)}")
    try:
        if not link:
            raise OSError("copy asked for")
        os.link(source, temporary)
    except OSError:  # another file system, or one without hard links
        shutil.copyfile(source, temporary)
    os.replace(temporary, target)


def _place_chunks(volume_dir: Path, series_dir: Path, timepoint: int, *, link: bool) -> None:
    """Make ``series_dir/c/<timepoint>/...`` the chunks of ``volume_dir``, removing chunks it no longer has."""
    target_root = series_dir / "c" / str(timepoint)
    wanted = _chunk_files(volume_dir)
    present = {path.relative_to(target_root) for path in target_root.rglob("*") if path.is_file()} if target_root.is_dir() else set()
    for key, source in wanted.items():
        _place(source, target_root / key, link=link)
    for key in present - set(wanted):
        (target_root / key).unlink()
    if fsync_enabled() and target_root.is_dir():
        make_durable(target_root, root=series_dir)


def _interval_s(timestamps: Mapping[int, str]) -> float:
    """Median seconds per timepoint between consecutive timestamped timepoints; :data:`DEFAULT_INTERVAL_S` until two exist."""
    known = sorted((timepoint, datetime.fromisoformat(stamp)) for timepoint, stamp in timestamps.items())
    steps = [(b - a).total_seconds() / (tb - ta) for (ta, a), (tb, b) in zip(known, known[1:])]
    positive = [step for step in steps if step > 0]
    return float(statistics.median(positive)) if positive else DEFAULT_INTERVAL_S


def _contrast_window(volume: Path, depth: int, maximum: float) -> Window:
    """OMERO window from :data:`CONTRAST_PERCENTILES` of the non-zero voxels of evenly spaced planes."""
    planes = sorted({int(round(k)) for k in np.linspace(0, depth - 1, min(depth, CONTRAST_PLANES))})
    values = np.concatenate([read_ome_zarr_planes(volume, plane, plane + 1).ravel() for plane in planes])
    values = values[values > 0]
    start, end = (float(v) for v in np.percentile(values, CONTRAST_PERCENTILES)) if values.size else (0.0, maximum)
    return Window(min=0.0, max=maximum, start=start, end=max(end, start + 1.0))


def _group_document(
    name: str, volume_multiscale: Mapping[str, Any], interval_s: float, window: Mapping[str, float], label: str, isoview: Mapping[str, Any]
) -> dict[str, Any]:
    """The series group's ``zarr.json``: a (t, z, y, x) multiscale over the volume's levels, OMERO window, isoview attributes."""
    axes = [Axis(name="t", type="time", unit="second"), *(Axis(**axis) for axis in volume_multiscale["axes"])]
    datasets = [
        Dataset.build(path=dataset["path"], scale=[interval_s, *dataset["coordinateTransformations"][0]["scale"]], translation=None)
        for dataset in volume_multiscale["datasets"]
    ]
    multiscale = Multiscale(name=name, axes=axes, datasets=datasets, type=volume_multiscale.get("type"))
    omero = Omero(channels=[Channel(color="FFFFFF", window=Window(**window), label=label, active=True)], rdefs={"model": "greyscale"})
    ome = ome_json(ImageAttrs(version=NGFF_VERSION, multiscales=[multiscale])) | {"omero": ome_json(omero)}
    return {"zarr_format": 3, "node_type": "group", "attributes": {"ome": ome, ATTRIBUTES_KEY: dict(isoview)}}


def append_timepoint(
    series: Path,
    volume: Path,
    *,
    timepoint: int,
    fingerprint: str,
    timestamp: str | None = None,
    label: str | None = None,
    attributes: Mapping[str, Any] | None = None,
    link: bool = True,
) -> None:
    """Publish one timepoint's volume in a live time series (created at the first timepoint), or replace it.

    Parameters
    ----------
    series : Path
        The series, e.g. :func:`isoview_core.layout.fused_series_path`.
    volume : Path
        The timepoint's published OME-Zarr volume (z, y, x), written by :class:`~isoview_core.formats.omezarr.OmeZarrWriter`.
    timepoint : int
        Its timepoint number: the index along t.
    fingerprint : str
        Identity of what was published (:func:`record_fingerprint` of its record), kept in ``isoview.timepoints``.
    timestamp : str, optional
        ISO 8601 acquisition time of the timepoint (channel XML), for the time axis' scale.
    label : str, optional
        Channel label shown by viewers (default: the series' name).
    attributes : mapping, optional
        Series-wide metadata (specimen, view, channel, cameras...) stored under ``isoview`` at creation.
    link : bool
        Hard-link the shard files (default), copying only across file systems; False always copies.

    Raises
    ------
    FormatError
        The volume's shape, type, chunks or codecs differ from the series' (it was written with other settings).
    """
    series, volume = Path(series), Path(volume)
    source_group = _read_json(volume / "zarr.json")
    multiscale = source_group["attributes"]["ome"]["multiscales"][0]
    levels = [dataset["path"] for dataset in multiscale["datasets"]]
    series.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(series / LOCK_NAME):
        group_path = series / "zarr.json"
        existing = _read_json(group_path) if group_path.is_file() else None
        isoview = dict(existing["attributes"][ATTRIBUTES_KEY]) if existing else {**(attributes or {}), "timepoints": {}, "timestamps": {}}
        published = dict(isoview["timepoints"])
        if existing and str(timepoint) in published:  # a rerun: withdrawn while its chunks are replaced
            published.pop(str(timepoint))
            _write_json(group_path, existing | {"attributes": existing["attributes"] | {ATTRIBUTES_KEY: isoview | {"timepoints": published}}})
        for level in levels:
            volume_array = _read_json(volume / level / "zarr.json")
            array_path = series / level / "zarr.json"
            current = _read_json(array_path) if array_path.is_file() else None
            grown = _series_array(volume_array, max(timepoint + 1, current["shape"][0] if current else 0))
            if current is not None:
                _check_compatible(current, grown, volume, series)
            _place_chunks(volume / level, series / level, timepoint, link=link)
            _write_json(array_path, grown)
        timestamps = dict(isoview.get("timestamps", {})) | ({str(timepoint): timestamp} if timestamp else {})
        interval = _interval_s({int(t): stamp for t, stamp in timestamps.items() if t in published or t == str(timepoint)})
        if existing:
            window = existing["attributes"]["ome"]["omero"]["channels"][0]["window"]
        else:
            level0 = _read_json(volume / levels[0] / "zarr.json")
            maximum = float(np.iinfo(np.dtype(level0["data_type"])).max) if np.dtype(level0["data_type"]).kind in "iu" else 1.0
            window = _contrast_window(volume, level0["shape"][0], maximum).model_dump()
        name = series.name.removesuffix(".ome.zarr")
        isoview |= {"timepoints": published | {str(timepoint): fingerprint}, "timestamps": timestamps, "time_interval_s": interval}
        _write_json(group_path, _group_document(name, multiscale, interval, window, label or name, isoview))

