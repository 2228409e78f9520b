"""Keep each fused view's live time series in step with the fused volumes on disk (:mod:`isoview_core.results.series`).

Called after every fused pair, in the worker that fused it: every timepoint of the pair's series whose fusion
record the series does not show yet (the new one, a rerun, one a kill interrupted) is appended, so the series
repairs itself at the next fusion of its view.
"""

from __future__ import annotations

import logging
from pathlib import Path

from isoview_core.config import ProcessingConfig
from isoview_core.errors import IsoviewError
from isoview_core.formats.omezarr.reader import read_ome_zarr_attributes
from isoview_core.fusion.records import load_fusion_record
from isoview_core.layout import FUSION_RECORD_SUFFIX, FusedPaths, PairId, configured_corrected_paths, fused_series_path, pair_series_files
from isoview_core.results.series import append_timepoint, record_fingerprint, stale_timepoints

logger = logging.getLogger(__name__)


def _timestamp(config: ProcessingConfig, pair: PairId) -> str | None:
    """Acquisition time of the pair's timepoint: the XML timestamp kept with its reference camera's corrected volume."""
    paths = configured_corrected_paths(config, pair.specimen, pair.timepoint, pair.cameras[0], pair.channel)
    try:
        return read_ome_zarr_attributes(paths.volume).get("xml", {}).get("timestamp")
    except (OSError, IsoviewError):
        return None


def update_fused_series(config: ProcessingConfig, pair: PairId) -> list[int]:
    """Append to the time series of `pair`'s view and channel every fused timepoint it does not show yet.

    Parameters
    ----------
    config : ProcessingConfig
        Corrected and fused roots.
    pair : PairId
        Any pair of the series (its timepoint is not used).

    Returns
    -------
    list of int
        The timepoints appended, in order.
    """
    root = config.resolved_fused_dir()
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
            timestamp=_timestamp(config, member),
            label=f"VW{pair.view:02d} CHN{pair.channel:02d}",
            attributes={"specimen": pair.specimen, "view": pair.view, "channel": pair.channel, "cameras": list(pair.cameras)},
        )
        logger.info("%s: timepoint %d published", Path(series).name, timepoint)
    return appended
