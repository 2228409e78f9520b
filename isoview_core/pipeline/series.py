"""Keep the live time series in step with the volumes on disk (:mod:`isoview_core.results.series`): each fused
view's and each isotropic channel pair's always, each corrected camera's when asked (``output.corrected_series``).

Called after every fused pair, in the worker that fused it: every timepoint of the pair's series whose fusion
record the series does not show yet (the new one, a rerun, one a kill interrupted) is appended, so the series
repairs itself at the next fusion of its view. A BigStitcher ``dataset.xml`` exported once is kept in step.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from isoview_core.errors import IsoviewError
from isoview_core.formats.omezarr.reader import read_ome_zarr_attributes
from isoview_core.fusion.records import load_fusion_record
from isoview_core.records import load_record
from isoview_core.isotropic.records import load_isotropic_record
from isoview_core.layout import (
    FUSION_RECORD_SUFFIX,
    ISOTROPIC_RECORD_SUFFIX,
    FusedPaths,
    IsotropicId,
    IsotropicPaths,
    PairId,
    bigstitcher_dataset_path,
    camera_series_records,
    corrected_paths,
    corrected_series_path,
    fused_series_path,
    isotropic_series_files,
    isotropic_series_path,
    output_files,
    output_specimens,
    pair_series_files,
)
from isoview_core.results.bigstitcher import write_bigstitcher_dataset
from isoview_core.results.series import append_timepoint, record_fingerprint, remove_partial_files, stale_timepoints

logger = logging.getLogger(__name__)


def _volume_timestamp(volume: Path) -> str | None:
    """Acquisition time kept with a corrected volume: its channel XML's timestamp (None when it has none)."""
    try:
        return read_ome_zarr_attributes(volume).get("xml", {}).get("timestamp")
    except (OSError, IsoviewError):
        return None


def _update_series(
    series: Path,
    records: Mapping[int, Path],
    volume: Callable[[int], Path],
    timestamp: Callable[[int], str | None],
    *,
    label: str,
    attributes: Mapping[str, Any],
) -> list[int]:
    """Append to `series` every timepoint of `records` (timepoint -> record) it does not show yet; the timepoints appended."""
    appended = stale_timepoints(series, records)
    for timepoint in appended:
        append_timepoint(
            series,
            volume(timepoint),
            timepoint=timepoint,
            fingerprint=record_fingerprint(records[timepoint]),
            timestamp=timestamp(timepoint),
            label=label,
            attributes=attributes,
        )
        logger.info("%s: timepoint %d published", series.name, timepoint)
    return appended


def update_fused_series(fused_root: Path, pair: PairId, *, corrected_root: Path | None = None) -> list[int]:
    """Append to the time series of `pair`'s view and channel every fused timepoint it does not show yet.

    Parameters
    ----------
    fused_root : Path
        The fusion output root (the series sit at its top).
    pair : PairId
        Any pair of the series (its timepoint is not used).
    corrected_root : Path, optional
        The correction output root, whose volumes keep the XML timestamps (the series' time scale).

    Returns
    -------
    list of int
        The timepoints appended, in order.
    """
    root = Path(fused_root)
    records = {load_fusion_record(path).timepoint: path for path in pair_series_files(root, pair, FUSION_RECORD_SUFFIX)}

    def member(timepoint: int) -> PairId:
        return PairId(pair.specimen, timepoint, pair.cameras, pair.view, pair.channel)

    def timestamp(timepoint: int) -> str | None:
        if corrected_root is None:
            return None
        return _volume_timestamp(corrected_paths(corrected_root, pair.specimen, timepoint, pair.cameras[0], pair.channel).volume)

    appended = _update_series(
        fused_series_path(root, pair.specimen, pair.view, pair.channel),
        records,
        lambda timepoint: FusedPaths(root, member(timepoint)).volume,
        timestamp,
        label=f"VW{pair.view:02d} CHN{pair.channel:02d}",
        attributes={"specimen": pair.specimen, "view": pair.view, "channel": pair.channel, "cameras": list(pair.cameras)},
    )
    if appended and bigstitcher_dataset_path(root).is_file():
        write_bigstitcher_dataset(root)
    return appended


def update_corrected_series(corrected_root: Path, specimen: int, camera: int, channel: int) -> list[int]:
    """Append to the time series of one corrected camera and channel every corrected timepoint it does not show yet
    (OME-Zarr outputs; :func:`update_fused_series` for the rest); the timepoints appended."""
    root = Path(corrected_root)
    records = {load_record(path).timepoint: path for path in camera_series_records(root, specimen, camera, channel)}
    return _update_series(
        corrected_series_path(root, specimen, camera, channel),
        records,
        lambda timepoint: corrected_paths(root, specimen, timepoint, camera, channel).volume,
        lambda timepoint: _volume_timestamp(corrected_paths(root, specimen, timepoint, camera, channel).volume),
        label=f"CM{camera:02d} CHN{channel:02d}",
        attributes={"specimen": specimen, "camera": camera, "channel": channel},
    )


def update_all_fused_series(fused_root: Path, *, corrected_root: Path | None = None) -> dict[Path, list[int]]:
    """Bring every fused view's series in step with the fused volumes under `fused_root` (e.g. outputs fused before
    the series existed); series path -> timepoints appended."""
    appended = {}
    for specimen in output_specimens(fused_root):
        series = {}
        for path in output_files(fused_root, FUSION_RECORD_SUFFIX, specimen):
            record = load_fusion_record(path)
            series.setdefault((record.view, record.channel), PairId(specimen, 0, record.cameras, record.view, record.channel))
        for (view, channel), pair in sorted(series.items()):
            path = fused_series_path(fused_root, specimen, view, channel)
            remove_partial_files(path)  # what a killed append left
            appended[path] = update_fused_series(fused_root, pair, corrected_root=corrected_root)
    return appended


def update_isotropic_series(isotropic_root: Path, volume_id: IsotropicId) -> list[int]:
    """Append to the time series of `volume_id`'s channels every isotropic timepoint it does not show yet; the timepoints appended."""
    root = Path(isotropic_root)
    records = {load_isotropic_record(path).timepoint: path for path in isotropic_series_files(root, volume_id, ISOTROPIC_RECORD_SUFFIX)}
    specimen, channels = volume_id.specimen, volume_id.channels
    return _update_series(
        isotropic_series_path(root, specimen, channels),
        records,
        lambda timepoint: IsotropicPaths(root, IsotropicId(specimen, timepoint, channels)).volume,
        lambda timepoint: None,
        label=f"isotropic CHN{channels[0]:02d}+CHN{channels[1]:02d}",
        attributes={"specimen": specimen, "channels": list(channels), "isotropic": True},
    )


def update_all_isotropic_series(isotropic_root: Path) -> dict[Path, list[int]]:
    """Bring every isotropic series in step with the isotropic volumes under `isotropic_root`; series -> timepoints appended."""
    appended = {}
    for specimen in output_specimens(isotropic_root):
        records = map(load_isotropic_record, output_files(isotropic_root, ISOTROPIC_RECORD_SUFFIX, specimen))
        for channels in sorted({record.channels for record in records}):
            path = isotropic_series_path(isotropic_root, specimen, channels)
            remove_partial_files(path)  # what a killed append left
            appended[path] = update_isotropic_series(isotropic_root, IsotropicId(specimen, 0, channels))
    return appended


def update_all_corrected_series(corrected_root: Path) -> dict[Path, list[int]]:
    """Bring every corrected camera's series in step with the corrected volumes under `corrected_root`; series -> timepoints appended."""
    appended = {}
    for specimen in output_specimens(corrected_root):
        cameras = {(record.camera, record.channel) for record in map(load_record, output_files(corrected_root, ".json", specimen))}
        for camera, channel in sorted(cameras):
            path = corrected_series_path(corrected_root, specimen, camera, channel)
            remove_partial_files(path)  # what a killed append left
            appended[path] = update_corrected_series(corrected_root, specimen, camera, channel)
    return appended
