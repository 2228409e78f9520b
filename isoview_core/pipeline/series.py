"""Keep each fused view's live time series in step with the fused volumes on disk (:mod:`isoview_core.results.series`).

Called after every fused pair, in the worker that fused it: every timepoint of the pair's series whose fusion
record the series does not show yet (the new one, a rerun, one a kill interrupted) is appended, so the series
repairs itself at the next fusion of its view. A BigStitcher ``dataset.xml`` exported once is kept in step.
"""

from __future__ import annotations

import logging
from pathlib import Path

from isoview_core.errors import IsoviewError
from isoview_core.formats.omezarr.reader import read_ome_zarr_attributes
from isoview_core.fusion.records import load_fusion_record
from isoview_core.layout import (
    FUSION_RECORD_SUFFIX,
    FusedPaths,
    PairId,
    bigstitcher_dataset_path,
    corrected_paths,
    fused_series_path,
    output_files,
    output_specimens,
    pair_series_files,
)
from isoview_core.results.bigstitcher import write_bigstitcher_dataset
from isoview_core.results.series import append_timepoint, record_fingerprint, stale_timepoints

logger = logging.getLogger(__name__)


def _timestamp(corrected_root: Path | None, pair: PairId) -> str | None:
    """Acquisition time of the pair's timepoint: the XML timestamp kept with its reference camera's corrected volume."""
    if corrected_root is None:
        return None
    paths = corrected_paths(corrected_root, pair.specimen, pair.timepoint, pair.cameras[0], pair.channel)
    try:
        return read_ome_zarr_attributes(paths.volume).get("xml", {}).get("timestamp")
    except (OSError, IsoviewError):
        return None


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
    records = {}
    for path in pair_series_files(root, pair, FUSION_RECORD_SUFFIX):
        records[load_fusion_record(path).timepoint] = path
    series = fused_series_path(root, pair.specimen, pair.view, pair.channel)
    appended = stale_timepoints(series, records)
    for timepoint in appended:
        member = PairId(pair.specimen, timepoint, pair.cameras, pair.view, pair.channel)
        append_timepoint(
            series,
            FusedPaths(root, member).volume,
            timepoint=timepoint,
            fingerprint=record_fingerprint(records[timepoint]),
            timestamp=_timestamp(corrected_root, member),
            label=f"VW{pair.view:02d} CHN{pair.channel:02d}",
            attributes={"specimen": pair.specimen, "view": pair.view, "channel": pair.channel, "cameras": list(pair.cameras)},
        )
        logger.info("%s: timepoint %d published", Path(series).name, timepoint)
    if appended and bigstitcher_dataset_path(root).is_file():
        write_bigstitcher_dataset(root)
    return appended


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
            appended[fused_series_path(fused_root, specimen, view, channel)] = update_fused_series(fused_root, pair, corrected_root=corrected_root)
    return appended
