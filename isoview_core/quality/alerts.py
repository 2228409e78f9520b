"""Live quality alerts: a pair's offset or intensity ratio jumping, a camera's signal dropping, a camera missing.

Each alert is one line in ``<fused>/service/alerts.jsonl`` with a message a microscopist reads at a glance
(``SPM00 TM000012 CHN00 cameras 0/1: offset jumped 3.4 px from the previous timepoints (...; bound 2 px)``).
The checks read only what the service has written: the corrected stacks' records and xy projections, and the
pairs' ``estimate.json`` and ``fusion.json``. Per timepoint, cameras first, then pairs (bounds in
:class:`~isoview_core.quality.config.AlertConfig`):

* **missing**: a camera (of a channel) corrected at one of the previous ``history`` timepoints has no corrected stack
  at a timepoint where other stacks were corrected.
* **signal**: one of the camera's measures (foreground fraction, mean intensity, focus) is below ``signal_drop``
  times the median of its previous ``history`` timepoints (at least ``min_history`` of them, dark ones left out).
  The camera then counts as dark, and raises no new alert, for as long as one of its measures stays below
  ``signal_drop`` times the values that alert compared with.
* **offset**, **ratio**: a pair's estimated offset is further than ``offset_px`` (x and y together) or its intensity
  ratio changed by more than ``ratio_change`` from the median of its previous ``history`` estimates (at least
  ``min_history`` of those made with both cameras lit) or from its smoothed trend (the applied parameters in its
  ``fusion.json``, once fused). A pair whose camera is dark or missing is not checked: its estimate measures noise,
  and the camera's alert says why.

An alert is raised once: not again for the same kind, subject (camera or pair) and timepoint, so that a restart or a
rerun repeats nothing, and not while the same event goes on (a pair's alert of the same kind at one of its previous
``history`` timepoints: a lasting step; a camera still dark).

One module, over 500 lines with its docstrings: the camera and pair checks share one state (a camera's alert decides
whether its pair is checked, and which of the pair's estimates make its history), which a split would pass back and forth.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from isoview_core.formats.atomic import append_text
from isoview_core.formats.tiff import read_tiff
from isoview_core.layout import (
    ESTIMATE_SUFFIX,
    CorrectedPaths,
    FusedPaths,
    PairId,
    alerts_path,
    corrected_stem,
    output_timepoint_folder,
    pair_series_files,
)
from isoview_core.naming import TIMEPOINT_DIR_PATTERN, specimen_dir_name
from isoview_core.quality.config import AlertConfig
from isoview_core.records import CorrectedStackRecord, FusionParameters, load_record

AlertKind = Literal["offset", "ratio", "signal", "missing"]

SIGNAL_MEASURES = {"foreground_fraction": "foreground", "mean_intensity": "intensity", "focus": "focus"}
"""The measures of a camera's signal, with the word a message uses for each."""


class CameraSignal(BaseModel):
    """How much a camera saw at one timepoint: what a dark, dimmed or defocused camera loses."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    foreground_fraction: float = Field(description="Share of the stack's voxels segmented as specimen (the correction record's).")
    mean_intensity: float = Field(description="Mean of the corrected xy maximum-intensity projection (ADU above background).")
    focus: float = Field(description="Normalised Brenner gradient of that projection (:func:`focus_measure`).")


class QualityAlert(BaseModel):
    """One quality alert: what jumped, dropped or went missing, where, and by how much."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: AlertKind
    specimen: int
    timepoint: int
    channel: int
    cameras: tuple[int, ...] = Field(description="The camera (signal, missing) or the pair (offset, ratio).")
    message: str = Field(description="One line naming specimen, timepoint, channel, camera(s), the change and its bound.")
    value: float = Field(description="Offset jump (px), ratio change (fraction), lowest signal fraction, or previous timepoints with the camera.")
    bound: float = Field(description="The bound it went beyond (same unit as `value`).")
    reference: dict[str, float] = Field(default_factory=dict, description="The values compared with (a median or the smoothed trend).")
    time: float = Field(default_factory=time.time, description="When it was raised (seconds since the epoch).")

    @property
    def key(self) -> tuple[str, int, int, int, tuple[int, ...]]:
        """What the alert is about, without when it was raised: one alert per key."""
        return self.kind, self.specimen, self.timepoint, self.channel, self.cameras


def focus_measure(image: np.ndarray) -> float:
    """Normalised Brenner gradient of a 2D image: sharpness independent of brightness.

    Parameters
    ----------
    image : ndarray
        (Y, X) image, e.g. a maximum-intensity projection.

    Returns
    -------
    float
        ``mean((I[y, x+2] - I[y, x])^2 and (I[y+2, x] - I[y, x])^2) / mean(I)^2``; NaN for an image smaller
        than 3x3 or with mean 0. A defocused camera's value drops, a dimmed one's does not.

    References
    ----------
    J. F. Brenner et al., "An automated microscope for cytologic research", J. Histochem. Cytochem. 24, 100-111 (1976).
    S. Pertuz, D. Puig, M. A. Garcia, "Analysis of focus measure operators for shape-from-focus",
    Pattern Recognit. 46, 1415-1432 (2013).
    """
    values = np.asarray(image, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"focus_measure takes a 2D image; got shape {values.shape}")
    if min(values.shape) < 3 or values.mean() == 0:
        return math.nan
    gradient = (np.mean((values[:, 2:] - values[:, :-2]) ** 2) + np.mean((values[2:, :] - values[:-2, :]) ** 2)) / 2
    return float(gradient / values.mean() ** 2)


def camera_signal(record: Path) -> CameraSignal:
    """The signal measures of one corrected stack, from its record (``<stem>.json``) and its xy projection beside it.

    Parameters
    ----------
    record : Path
        The corrected stack's record.

    Returns
    -------
    CameraSignal
        Mean intensity and focus are NaN (never an alert) when the projection cannot be read.
    """
    return _signal(record, load_record(record))


def _signal(path: Path, record: CorrectedStackRecord) -> CameraSignal:
    """:func:`camera_signal` of the record read from `path`."""
    projection = CorrectedPaths(path.parent, path.name.removesuffix(".json"), record.format).projection("xy")
    try:
        image = read_tiff(projection)
    except (OSError, ValueError):  # FormatError is an IsoviewError; both are what a missing or torn TIFF raises
        return CameraSignal(foreground_fraction=record.foreground_fraction, mean_intensity=math.nan, focus=math.nan)
    mean = float(np.mean(image, dtype=np.float64))
    return CameraSignal(foreground_fraction=record.foreground_fraction, mean_intensity=mean, focus=focus_measure(image))


def read_alerts(fused_root: Path) -> list[QualityAlert]:
    """Every alert raised so far for the acquisition, oldest first (a torn last line from a killed process is skipped)."""
    path = alerts_path(fused_root)
    if not path.is_file():
        return []
    alerts = []
    for line in path.read_text().splitlines():
        try:
            alerts.append(QualityAlert.model_validate_json(line))
        except ValidationError:
            continue
    return alerts


def find_alerts(
    corrected_root: Path,
    fused_root: Path,
    specimen: int,
    timepoints: Iterable[int],
    config: AlertConfig,
    *,
    known: Sequence[QualityAlert] = (),
    cameras: bool = True,
    pairs: bool = True,
) -> list[QualityAlert]:
    """Check timepoints of one specimen: the new alerts, not recorded (see the module docstring for the rules).

    Parameters
    ----------
    corrected_root, fused_root : Path
        The correction and fusion output roots.
    specimen : int
        The specimen.
    timepoints : iterable of int
        The timepoints to check, in any order (they are checked in time order); one without outputs is skipped.
    config : AlertConfig
        The bounds; ``enabled=False`` checks nothing.
    known : sequence of QualityAlert
        The alerts raised before (:func:`read_alerts`): none is raised again, and they say which cameras are dark.
    cameras, pairs : bool
        Check the cameras (after a correction), the pairs (after an estimation or a fusion), or both.

    Returns
    -------
    list of QualityAlert
        In time order, cameras before pairs.
    """
    if not config.enabled:
        return []
    checker = _Checker(_Outputs(Path(corrected_root), Path(fused_root), specimen), config, list(known))
    for timepoint in sorted(set(timepoints)):
        if cameras:
            checker.check_cameras(timepoint)
        if pairs:
            checker.check_pairs(timepoint)
    return checker.raised


def raise_alerts(
    corrected_root: Path,
    fused_root: Path,
    specimen: int,
    timepoints: Iterable[int],
    config: AlertConfig,
    *,
    cameras: bool = True,
    pairs: bool = True,
) -> list[QualityAlert]:
    """Check timepoints (:func:`find_alerts`) against the alerts already recorded and append the new ones to ``alerts.jsonl``.

    Parameters
    ----------
    corrected_root, fused_root : Path
        The correction and fusion output roots; the alerts go to ``<fused_root>/service/alerts.jsonl``.
    specimen : int
        The specimen.
    timepoints : iterable of int
        The timepoints to check.
    config : AlertConfig
        The bounds.
    cameras, pairs : bool
        Check the cameras, the pairs, or both.

    Returns
    -------
    list of QualityAlert
        The alerts raised now (none already in ``alerts.jsonl``).
    """
    known = read_alerts(fused_root)
    alerts = find_alerts(corrected_root, fused_root, specimen, timepoints, config, known=known, cameras=cameras, pairs=pairs)
    if alerts:
        path = alerts_path(fused_root)
        path.parent.mkdir(parents=True, exist_ok=True)
        append_text(path, "".join(alert.model_dump_json() + "\n" for alert in alerts))
    return alerts


# --- reading the outputs --------------------------------------------------------------------------------------------

CameraKey = tuple[int, int]
"""(camera, channel)."""
Model = TypeVar("Model", bound=BaseModel)


@dataclass(frozen=True)
class _Pair:
    """One pair series: cameras, view and channel."""

    cameras: tuple[int, int]
    view: int
    channel: int


class _EstimateFile(BaseModel):
    """The fields of an ``estimate.json`` the checks read (the fusion stage owns the whole record)."""

    model_config = ConfigDict(extra="ignore")

    cameras: tuple[int, int]
    view: int
    channel: int
    parameters: FusionParameters


class _FusionFile(BaseModel):
    """The field of a ``fusion.json`` the checks read: the smoothed parameters applied."""

    model_config = ConfigDict(extra="ignore")

    applied: FusionParameters


def _read_model(path: Path, model: type[Model]) -> Model | None:
    """`path` as `model`, or None when missing or unreadable (a record being rewritten is checked next time)."""
    try:
        return model.model_validate(json.loads(path.read_text()))  # json, not pydantic's parser: NaN as the records write it
    except (OSError, ValueError):  # ValidationError and JSONDecodeError are ValueErrors
        return None


@lru_cache(maxsize=1024)
def _cached_signal(path: str, mtime_ns: int, size: int) -> tuple[CameraKey, CameraSignal] | None:
    """Camera, channel and signal of a corrected record, read once per version of the file (the service asks again)."""
    try:
        record = load_record(Path(path))
    except (OSError, ValueError):  # not a record, or one being rewritten
        return None
    return (record.camera, record.channel), _signal(Path(path), record)


def _timepoints_in(folder: Path) -> list[int]:
    """The timepoints of the ``TM...`` folders in `folder`, sorted."""
    if not folder.is_dir():
        return []
    return sorted(int(match["timepoint"]) for entry in folder.iterdir() if (match := TIMEPOINT_DIR_PATTERN.match(entry.name)))


@dataclass
class _Outputs:
    """What the correction and fusion wrote for one specimen, read once per check."""

    corrected_root: Path
    fused_root: Path
    specimen: int
    _signals: dict[int, dict[CameraKey, CameraSignal]] = field(default_factory=dict)
    _corrected_timepoints: list[int] | None = None

    def previous_corrected(self, timepoint: int, count: int) -> list[int]:
        """The last `count` corrected timepoints on disk before `timepoint`."""
        if self._corrected_timepoints is None:
            self._corrected_timepoints = _timepoints_in(self.corrected_root / specimen_dir_name(self.specimen))
        return [t for t in self._corrected_timepoints if t < timepoint][-count:]

    def signals(self, timepoint: int) -> dict[CameraKey, CameraSignal]:
        """The signal of every camera corrected at `timepoint`."""
        if timepoint not in self._signals:
            found = {}
            for path in output_timepoint_folder(self.corrected_root, self.specimen, timepoint).glob("*.json"):
                try:
                    stat = path.stat()
                except OSError:  # removed since listed: an interrupted output being cleaned up
                    continue
                read = _cached_signal(str(path), stat.st_mtime_ns, stat.st_size)
                if read is not None and path.stem == corrected_stem(self.specimen, timepoint, *read[0]):
                    found[read[0]] = read[1]
            self._signals[timepoint] = found
        return self._signals[timepoint]

    def estimates(self, timepoint: int) -> dict[_Pair, FusionParameters]:
        """The estimated parameters of every pair at `timepoint`."""
        found = {}
        for path in output_timepoint_folder(self.fused_root, self.specimen, timepoint).glob(f"*{ESTIMATE_SUFFIX}"):
            estimate = _read_model(path, _EstimateFile)
            if estimate is not None:
                found[_Pair(estimate.cameras, estimate.view, estimate.channel)] = estimate.parameters
        return found

    def estimate(self, pair: _Pair, timepoint: int) -> FusionParameters | None:
        """The pair's estimated parameters at `timepoint`; None where there is no estimate."""
        estimate = _read_model(FusedPaths(self.fused_root, self._pair_id(pair, timepoint)).estimate, _EstimateFile)
        return None if estimate is None else estimate.parameters

    def trend(self, pair: _Pair, timepoint: int) -> FusionParameters | None:
        """The smoothed parameters the pair was fused with at `timepoint`; None before it is fused."""
        record = _read_model(FusedPaths(self.fused_root, self._pair_id(pair, timepoint)).record, _FusionFile)
        return None if record is None else record.applied

    def previous_estimated(self, pair: _Pair, timepoint: int, count: int) -> list[int]:
        """The last `count` timepoints before `timepoint` with an estimate of the pair on disk."""
        found = (TIMEPOINT_DIR_PATTERN.match(path.parent.name) for path in pair_series_files(self.fused_root, self._pair_id(pair, 0), ESTIMATE_SUFFIX))
        return sorted(t for match in found if match and (t := int(match["timepoint"])) < timepoint)[-count:]

    def _pair_id(self, pair: _Pair, timepoint: int) -> PairId:
        return PairId(self.specimen, timepoint, pair.cameras, pair.view, pair.channel)


# --- the checks ---------------------------------------------------------------------------------------------------


def _median(values: Sequence[float]) -> float:
    """Median of the finite values; NaN when there is none (a NaN never raises an alert)."""
    finite = [value for value in values if math.isfinite(value)]
    return float(np.median(finite)) if finite else math.nan


@dataclass
class _Checker:
    """The checks of one call, in time order: the alerts known before and those raised so far decide what is new."""

    outputs: _Outputs
    config: AlertConfig
    known: list[QualityAlert]
    raised: list[QualityAlert] = field(default_factory=list)

    # ---- what is known

    def _alerts(self, kind: AlertKind, channel: int, cameras: tuple[int, ...]) -> list[QualityAlert]:
        return [
            alert
            for alert in [*self.known, *self.raised]
            if alert.kind == kind and alert.specimen == self.outputs.specimen and alert.channel == channel and alert.cameras == cameras
        ]

    def _raise(self, alert: QualityAlert) -> None:
        if alert.key not in {known.key for known in [*self.known, *self.raised]}:
            self.raised.append(alert)

    def _where(self, timepoint: int, channel: int, cameras: tuple[int, ...]) -> str:
        who = f"camera {cameras[0]}" if len(cameras) == 1 else f"cameras {cameras[0]}/{cameras[1]}"
        return f"{specimen_dir_name(self.outputs.specimen)} TM{timepoint:06d} CHN{channel:02d} {who}"

    def _dark_versus(self, signal: CameraSignal, alert: QualityAlert) -> bool:
        """Whether one measure of `signal` is below the bound times the values `alert` compared with."""
        return any(getattr(signal, name) < self.config.signal_drop * value for name, value in alert.reference.items())

    def _episode(self, key: CameraKey, timepoint: int) -> QualityAlert | None:
        """The camera's latest signal alert at or before `timepoint`: the values it stays dark against."""
        camera, channel = key
        alerts = [alert for alert in self._alerts("signal", channel, (camera,)) if alert.timepoint <= timepoint]
        return max(alerts, key=lambda alert: alert.timepoint) if alerts else None

    def _lit(self, key: CameraKey, timepoint: int) -> bool:
        """Whether the camera was corrected at `timepoint` and not dark there."""
        signal = self.outputs.signals(timepoint).get(key)
        if signal is None:
            return False
        episode = self._episode(key, timepoint)
        return episode is None or not self._dark_versus(signal, episode)

    # ---- cameras

    def check_cameras(self, timepoint: int) -> None:
        """Missing cameras and signal drops at `timepoint`."""
        signals = self.outputs.signals(timepoint)
        if not signals:  # not corrected (yet): nothing to compare
            return
        previous = self.outputs.previous_corrected(timepoint, self.config.history)
        seen = Counter(key for t in previous for key in self.outputs.signals(t))
        for (camera, channel), count in sorted(seen.items()):
            going_on = any(alert.timepoint in previous for alert in self._alerts("missing", channel, (camera,)))
            if (camera, channel) not in signals and not going_on:
                where = self._where(timepoint, channel, (camera,))
                message = f"{where}: missing (no corrected stack; {count} of the previous {len(previous)} timepoints had one)"
                alert = QualityAlert(
                    kind="missing", specimen=self.outputs.specimen, timepoint=timepoint, channel=channel, cameras=(camera,), message=message, value=count, bound=0
                )
                self._raise(alert)
        for key, signal in sorted(signals.items()):
            self._check_signal(key, signal, timepoint, previous)

    def _check_signal(self, key: CameraKey, signal: CameraSignal, timepoint: int, previous: list[int]) -> None:
        """A signal drop of one camera, unless it is dark since an earlier alert; `previous`: the timepoints before."""
        episode = self._episode(key, timepoint - 1)
        if episode is not None and self._dark_versus(signal, episode):
            before = [t for t in previous if key in self.outputs.signals(t)]
            if not before or before[-1] <= episode.timepoint or not self._lit(key, before[-1]):
                return  # still dark since the alert
        history = [self.outputs.signals(t)[key] for t in previous if self._lit(key, t)]
        if len(history) < self.config.min_history:
            return
        reference = {name: _median([getattr(past, name) for past in history]) for name in SIGNAL_MEASURES}
        dropped = {name: getattr(signal, name) / value for name, value in reference.items() if getattr(signal, name) < self.config.signal_drop * value}
        if not dropped:
            return
        camera, channel = key
        changes = ", ".join(
            f"{SIGNAL_MEASURES[name]} {_signal_text(name, getattr(signal, name))} (was {_signal_text(name, reference[name])})" for name in dropped
        )
        lowest = min(dropped.values())
        message = (
            f"{self._where(timepoint, channel, (camera,))}: signal dropped to {100 * lowest:.2g} % of the previous timepoints' "
            f"({changes}; bound {100 * self.config.signal_drop:g} %)"
        )
        self._raise(
            QualityAlert(
                kind="signal",
                specimen=self.outputs.specimen,
                timepoint=timepoint,
                channel=channel,
                cameras=(camera,),
                message=message,
                value=lowest,
                bound=self.config.signal_drop,
                reference=reference,
            )
        )

    # ---- pairs

    def check_pairs(self, timepoint: int) -> None:
        """Offset and intensity-ratio jumps of every pair estimated at `timepoint`."""
        for pair, estimate in sorted(self.outputs.estimates(timepoint).items(), key=lambda item: item[0].cameras):
            if not all(self._lit((camera, pair.channel), timepoint) for camera in pair.cameras):
                continue  # a dark or missing camera: its own alert says why the estimate is noise
            previous = self.outputs.previous_estimated(pair, timepoint, self.config.history)
            healthy = [t for t in previous if all(self._lit((camera, pair.channel), t) for camera in pair.cameras)]
            history = [found for t in healthy if (found := self.outputs.estimate(pair, t)) is not None]
            references = []
            if len(history) >= self.config.min_history:
                median = FusionParameters.from_array(np.median(np.stack([past.as_array() for past in history]), axis=0))
                references.append(("previous timepoints", median))
            trend = self.outputs.trend(pair, timepoint)
            if trend is not None:
                references.append(("smoothed trend", trend))
            for kind in ("offset", "ratio"):
                going_on = any(alert.timepoint in previous for alert in self._alerts(kind, pair.channel, pair.cameras))
                if not going_on:
                    self._check_jump(kind, pair, timepoint, estimate, references)

    def _check_jump(self, kind: AlertKind, pair: _Pair, timepoint: int, estimate: FusionParameters, references: list[tuple[str, FusionParameters]]) -> None:
        """Raise the largest jump of `kind` beyond its bound, against the reference it is largest from."""
        bound = self.config.offset_px if kind == "offset" else self.config.ratio_change
        jumps = [(_jump(kind, estimate, reference), against, reference) for against, reference in references]
        jumps = [jump for jump in jumps if jump[0] > bound]  # NaN compares False: a failed measure raises nothing
        if not jumps:
            return
        value, against, reference = max(jumps, key=lambda jump: jump[0])
        where = self._where(timepoint, pair.channel, pair.cameras)
        if kind == "offset":
            message = (
                f"{where}: offset jumped {value:.1f} px from the {against} (x {reference.offset_x_px:.2f} -> {estimate.offset_x_px:.2f}, "
                f"y {reference.offset_y_px:.2f} -> {estimate.offset_y_px:.2f} px; bound {bound:g} px)"
            )
            compared = {"offset_x_px": reference.offset_x_px, "offset_y_px": reference.offset_y_px}
        else:
            message = (
                f"{where}: intensity ratio changed {100 * value:.0f} % from the {against} "
                f"({reference.intensity_ratio:.3f} -> {estimate.intensity_ratio:.3f}; bound {100 * bound:g} %)"
            )
            compared = {"intensity_ratio": reference.intensity_ratio}
        self._raise(
            QualityAlert(
                kind=kind,
                specimen=self.outputs.specimen,
                timepoint=timepoint,
                channel=pair.channel,
                cameras=pair.cameras,
                message=message,
                value=value,
                bound=bound,
                reference=compared,
            )
        )


def _jump(kind: AlertKind, estimate: FusionParameters, reference: FusionParameters) -> float:
    """The offset distance (px) or the relative ratio change between an estimate and a reference."""
    if kind == "offset":
        return math.hypot(estimate.offset_x_px - reference.offset_x_px, estimate.offset_y_px - reference.offset_y_px)
    return abs(estimate.intensity_ratio / reference.intensity_ratio - 1) if reference.intensity_ratio else math.nan


def _signal_text(name: str, value: float) -> str:
    """A signal measure as a message shows it: the foreground fraction in percent."""
    return f"{100 * value:.1f} %" if name == "foreground_fraction" else f"{value:.3g}"
