"""The one output layout: every folder, file and record name the pipeline writes (raw names stay in ``naming.py``).

Layout (ALGORITHMS.md §2.10, 6-digit TM, 2-digit CM, CHN and VW)::

    <acquisition>.corrected/SPM00/TM000012/
        SPM00_TM000012_CHN00.xml                          copied channel XML
        SPM00_TM000012_CM00_CHN00.ome.zarr                corrected volume + labels/segmentation
        SPM00_TM000012_CM00_CHN00_{xy,xz,yz}Projection.tif
        SPM00_TM000012_CM00_CHN00.segmentationMask_{xy,xz,yz}Projection.tif
        SPM00_TM000012_CM00_CHN00.{xy,xz}Mask.tif         1-based coordinate masks
        SPM00_TM000012_CM00_CHN00.json                    record, written last: marks the stack done
    <acquisition>.fused/SPM00/TM000012/
        SPM00_TM000012_CM00_CM01_VW00_CHN00.ome.zarr      fused volume
        SPM00_TM000012_CM00_CM01_VW00_CHN00.estimate.json parameters estimated at this timepoint
        SPM00_TM000012_CM00_CM01_VW00_CHN00.{mask,fusionMask}.tif   transition maps
        SPM00_TM000012_CM00_CM01_VW00_CHN00_{xy,xz,yz}Projection.tif
        SPM00_TM000012_CM00_CM01_VW00_CHN00.fusion.json   record, written last: marks the pair done
    <acquisition>.fused/diagnostics/TM000012/cam0_1/*.png       figures of one pair
    <acquisition>.fused/diagnostics/TM000012/cam0_1/{estimate,fusion}.preview.npz   their data until drawn
    <acquisition>.fused/diagnostics/parameters_over_time_cam0_1.png
    <acquisition>.fused/service/{journal,problems,alerts}.jsonl, watcher.lock
    <acquisition>.fused/SPM00_VW00_CHN00.ome.zarr                 live time series (t, z, y, x) of one fused view
    <acquisition>.corrected/SPM00_CM00_CHN00.ome.zarr             live time series of one corrected camera (optional)
    <acquisition>.fused/dataset.xml                               BigStitcher / BigDataViewer SpimData over the series
    <acquisition>.isotropic/SPM00/TM000012/
        SPM00_TM000012_CHN00_CHN01.ome.zarr               isotropic volume of VW00 channel 0 and VW90 channel 1
        SPM00_TM000012_CHN00_CHN01.registration.json      VW90 -> VW00 registration estimated at this timepoint
        SPM00_TM000012_CHN00_CHN01.isotropic.json         record, written last: marks the volume done
    <acquisition>.isotropic/SPM00_CHN00_CHN01.ome.zarr                     live time series (t, z, y, x) of the isotropic volumes
    <acquisition>.isotropic/diagnostics/TM000012/SPM00_TM000012_CHN00_CHN01_projections.png   views and volume, 3 projections
    <acquisition>.isotropic/diagnostics/transforms_over_time_CHN00_CHN01.png                  registrations over time
    <acquisition>.archive/<folders of the raw stack>/<raw stem>.{ome.zarr,archive.json}   raw archive (opt-in)
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Protocol

from isoview_core.formats.atomic import is_complete
from isoview_core.naming import specimen_dir_name

VOLUME_SUFFIX = {"zarr": ".ome.zarr", "klb": ".klb", "tif": ".tif"}
"""File suffix of a corrected volume in each output format."""

CORRECTED_ROOT_SUFFIX = ".corrected"
FUSED_ROOT_SUFFIX = ".fused"
"""Suffixes of the default output roots, ``<acquisition>.corrected`` and ``<acquisition>.fused`` beside the acquisition."""
ARCHIVE_ROOT_SUFFIX = ".archive"
"""Suffix of the default raw archive root, ``<acquisition>.archive`` beside the acquisition."""
ISOTROPIC_ROOT_SUFFIX = ".isotropic"
"""Suffix of the default isotropic root, ``<acquisition>.isotropic`` beside the acquisition."""
REGISTRATION_SUFFIX = ".registration.json"
ISOTROPIC_RECORD_SUFFIX = ".isotropic.json"
ARCHIVE_SUFFIX = VOLUME_SUFFIX["zarr"]
"""Suffix of an archived raw stack: ``<raw stem>.ome.zarr``."""
ARCHIVE_RECORD_SUFFIX = ".archive.json"
"""Suffix of an archive's record: ``<raw stem>.archive.json``."""
DIAGNOSTICS_DIR_NAME = "diagnostics"
SERVICE_DIR_NAME = "service"
JOURNAL_NAME = "journal.jsonl"
PROBLEMS_NAME = "problems.jsonl"
ALERTS_NAME = "alerts.jsonl"
BIGSTITCHER_DATASET_NAME = "dataset.xml"
SERIES_SUFFIX = VOLUME_SUFFIX["zarr"]
WATCHER_LOCK_NAME = "watcher.lock"
FUSED_VOLUME_SUFFIX = VOLUME_SUFFIX["zarr"]
ESTIMATE_SUFFIX = ".estimate.json"
FUSION_RECORD_SUFFIX = ".fusion.json"
PREVIEW_SUFFIX = ".preview.npz"
"""A diagnostic figure's reduced data, kept until it is drawn (:meth:`FusedPaths.preview`)."""


def default_corrected_root(acquisition: Path) -> Path:
    """``<acquisition>.corrected`` beside the acquisition: the correction output root unless configured."""
    acquisition = Path(acquisition)
    return acquisition.parent / f"{acquisition.name}{CORRECTED_ROOT_SUFFIX}"


def default_fused_root(acquisition: Path) -> Path:
    """``<acquisition>.fused`` beside the acquisition: the fusion output root unless configured."""
    acquisition = Path(acquisition)
    return acquisition.parent / f"{acquisition.name}{FUSED_ROOT_SUFFIX}"


def default_isotropic_root(acquisition: Path) -> Path:
    """``<acquisition>.isotropic`` beside the acquisition: the isotropic volumes' root unless configured."""
    acquisition = Path(acquisition)
    return acquisition.parent / f"{acquisition.name}{ISOTROPIC_ROOT_SUFFIX}"


def default_archive_root(acquisition: Path) -> Path:
    """``<acquisition>.archive`` beside the acquisition: the raw archive's root unless configured."""
    acquisition = Path(acquisition)
    return acquisition.parent / f"{acquisition.name}{ARCHIVE_ROOT_SUFFIX}"


def output_timepoint_dir_name(timepoint: int) -> str:
    """``TM000012``: timepoint folder of every output (6 digits)."""
    return _timepoint_token(timepoint)


def _timepoint_token(timepoint: int | str) -> str:
    """``TM000012``, or ``TM*`` (a glob over timepoints) for ``"*"``."""
    return f"TM{timepoint}" if isinstance(timepoint, str) else f"TM{timepoint:06d}"


def output_timepoint_folder(root: Path, specimen: int, timepoint: int) -> Path:
    """``<root>/SPM00/TM000000``: the folder of one timepoint's outputs (corrected or fused)."""
    return Path(root) / specimen_dir_name(specimen) / output_timepoint_dir_name(timepoint)


def corrected_stem(specimen: int, timepoint: int | str, camera: int, channel: int) -> str:
    """``SPM00_TM000012_CM01_CHN00``: stem of every corrected output of one camera stack (``"*"``: any timepoint)."""
    return f"{specimen_dir_name(specimen)}_{_timepoint_token(timepoint)}_CM{camera:02d}_CHN{channel:02d}"


FUSED_VOLUME_PATTERN = re.compile(
    r"^SPM(?P<specimen>\d{2})_TM(?P<timepoint>\d{6})_CM(?P<first>\d{2})_CM(?P<second>\d{2})_VW(?P<view>\d{2,3})_CHN(?P<channel>\d{2})\.ome\.zarr$"
)
"""Name of a fused volume (:func:`fused_stem` and :data:`FUSED_VOLUME_SUFFIX`)."""


def fused_stem(specimen: int, timepoint: int | str, cameras: tuple[int, int], view: int, channel: int) -> str:
    """``SPM00_TM000012_CM00_CM01_VW00_CHN00``: stem of every fused output of one camera pair (``"*"``: any timepoint)."""
    first, second = cameras
    return f"{specimen_dir_name(specimen)}_{_timepoint_token(timepoint)}_CM{first:02d}_CM{second:02d}_VW{view:02d}_CHN{channel:02d}"


# --- corrected camera stacks ------------------------------------------------------------------------


@dataclass(frozen=True)
class CorrectedPaths:
    """Where the outputs of one corrected camera stack go."""

    folder: Path
    stem: str
    format: str

    @property
    def volume(self) -> Path:
        return self.folder / f"{self.stem}{VOLUME_SUFFIX[self.format]}"

    @property
    def mask(self) -> Path:
        """Separate mask file of KLB / TIFF outputs (OME-Zarr keeps it as ``labels/segmentation``)."""
        return self.folder / f"{self.stem}.segmentationMask{VOLUME_SUFFIX[self.format]}"

    @property
    def record(self) -> Path:
        return self.folder / f"{self.stem}.json"

    def projection(self, name: str, *, mask: bool = False) -> Path:
        return self.folder / f"{self.stem}{'.segmentationMask' if mask else ''}_{name}Projection.tif"

    def coordinate_mask(self, name: str) -> Path:
        return self.folder / f"{self.stem}.{name}Mask.tif"


def corrected_paths(root: Path, specimen: int, timepoint: int, camera: int, channel: int, fmt: str = "zarr") -> CorrectedPaths:
    """Output paths of one camera stack under the correction root ``root``."""
    return CorrectedPaths(output_timepoint_folder(root, specimen, timepoint), corrected_stem(specimen, timepoint, camera, channel), fmt)


class _OutputFormat(Protocol):
    @property
    def format(self) -> str: ...


class ConfiguredOutputs(Protocol):
    """What layout reads of a processing config (``ProcessingConfig``, a floor above): roots and volume format."""

    @property
    def output(self) -> _OutputFormat: ...

    def resolved_corrected_dir(self) -> Path: ...


def configured_corrected_paths(config: ConfiguredOutputs, specimen: int, timepoint: int, camera: int, channel: int) -> CorrectedPaths:
    """Output paths of one camera stack where ``config`` puts them (its correction root and output format).

    Parameters
    ----------
    config : ProcessingConfig
        Gives the correction root (``resolved_corrected_dir()``) and ``output.format``.
    specimen, timepoint, camera, channel : int
        The camera stack.

    Returns
    -------
    CorrectedPaths
        As :func:`corrected_paths`.
    """
    return corrected_paths(config.resolved_corrected_dir(), specimen, timepoint, camera, channel, config.output.format)


def is_stack_corrected(paths: CorrectedPaths) -> bool:
    """True when the record (written last) and the complete volume both exist."""
    return paths.record.is_file() and is_complete(paths.volume)


def camera_series_records(root: Path, specimen: int, camera: int, channel: int) -> Iterator[Path]:
    """The records of one camera and channel's corrected stacks at every timepoint."""
    stem = corrected_stem(specimen, "*", camera, channel)
    return (Path(root) / specimen_dir_name(specimen)).glob(f"{_timepoint_token('*')}/{stem}.json")


def corrected_channel_xml(root: Path, specimen: int, timepoint: int, channel: int) -> Path:
    """``<root>/SPM00/TM000000/SPM00_TM000000_CHN00.xml``: a channel's XML copied beside its corrected volumes."""
    name = f"{specimen_dir_name(specimen)}_{output_timepoint_dir_name(timepoint)}_CHN{channel:02d}.xml"
    return output_timepoint_folder(root, specimen, timepoint) / name


# --- fused camera pairs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PairId:
    """One camera pair of one timepoint: cameras (reference, second), view angle and channel."""

    specimen: int
    timepoint: int
    cameras: tuple[int, int]
    view: int
    channel: int

    @property
    def stem(self) -> str:
        return fused_stem(self.specimen, self.timepoint, self.cameras, self.view, self.channel)

    @property
    def label(self) -> str:
        """``cam0_1``: the pair's diagnostics folder name."""
        return f"cam{self.cameras[0]}_{self.cameras[1]}"


@dataclass(frozen=True)
class FusedPaths:
    """Where the outputs of one fused pair go."""

    root: Path
    pair: PairId

    @property
    def folder(self) -> Path:
        return output_timepoint_folder(self.root, self.pair.specimen, self.pair.timepoint)

    @property
    def volume(self) -> Path:
        return self.folder / f"{self.pair.stem}{FUSED_VOLUME_SUFFIX}"

    @property
    def record(self) -> Path:
        return self.folder / f"{self.pair.stem}{FUSION_RECORD_SUFFIX}"

    @property
    def estimate(self) -> Path:
        return self.folder / f"{self.pair.stem}{ESTIMATE_SUFFIX}"

    @property
    def pre_registration_map(self) -> Path:
        return self.folder / f"{self.pair.stem}.mask.tif"

    @property
    def transition_map(self) -> Path:
        return self.folder / f"{self.pair.stem}.fusionMask.tif"

    def projection(self, name: str) -> Path:
        return self.folder / f"{self.pair.stem}_{name}Projection.tif"

    @property
    def diagnostics(self) -> Path:
        return timepoint_diagnostics_dir(self.root, self.pair.timepoint) / self.pair.label

    def figure(self, name: str) -> Path:
        """``<diagnostics>/<name>.png``: one diagnostic figure of the pair (``registration``, ``fusion_result``...)."""
        return self.diagnostics / f"{name}.png"

    def preview(self, name: str) -> Path:
        """``<diagnostics>/<name>.preview.npz``: the reduced data of figures not drawn yet (``estimate``, ``fusion``)."""
        return self.diagnostics / f"{name}{PREVIEW_SUFFIX}"

    def figures(self) -> list[Path]:
        """Every diagnostic figure of the pair written so far, sorted."""
        return sorted(self.diagnostics.glob("*.png"))


def output_files(root: Path, suffix: str = VOLUME_SUFFIX["zarr"], specimen: int | None = None) -> list[Path]:
    """Every output ending in ``suffix`` under a correction or fusion root (all specimens and timepoints), sorted.

    Parameters
    ----------
    root : Path
        The correction or fusion output root.
    suffix : str
        ``.ome.zarr`` (the OME-Zarr volumes, default), :data:`FUSION_RECORD_SUFFIX`, :data:`ESTIMATE_SUFFIX`...
    specimen : int, optional
        Only this specimen's outputs.

    Returns
    -------
    list of Path
        The files (folders for volumes), sorted.
    """
    specimens = "SPM*" if specimen is None else specimen_dir_name(specimen)
    return sorted(Path(root).glob(f"{specimens}/{_timepoint_token('*')}/*{suffix}"))


def output_specimens(root: Path) -> list[int]:
    """Specimens that have an output folder (``SPM00``...) under a correction or fusion root, sorted."""
    return sorted(int(folder.name.removeprefix("SPM")) for folder in Path(root).glob("SPM[0-9][0-9]") if folder.is_dir())


def pair_series_files(root: Path, pair: PairId, suffix: str) -> Iterator[Path]:
    """The ``suffix`` files (:data:`ESTIMATE_SUFFIX`, :data:`FUSION_RECORD_SUFFIX`) of the pair's series at every timepoint.

    A series is one specimen's pair of cameras, view and channel; ``pair.timepoint`` is ignored.
    """
    stem = fused_stem(pair.specimen, "*", pair.cameras, pair.view, pair.channel)
    return (Path(root) / specimen_dir_name(pair.specimen)).glob(f"{_timepoint_token('*')}/{stem}{suffix}")


def fused_pair_of(volume: Path) -> PairId | None:
    """The pair a fused volume's name says it is (:data:`FUSED_VOLUME_PATTERN`); None for any other name."""
    match = FUSED_VOLUME_PATTERN.match(Path(volume).name)
    if match is None:
        return None
    fields = {name: int(value) for name, value in match.groupdict().items()}
    return PairId(fields["specimen"], fields["timepoint"], (fields["first"], fields["second"]), fields["view"], fields["channel"])


# --- isotropic volumes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class IsotropicId:
    """The two fused views of one timepoint combined into one isotropic volume: VW00's and VW90's channels."""

    specimen: int
    timepoint: int
    channels: tuple[int, int]

    @property
    def stem(self) -> str:
        """``SPM00_TM000012_CHN00_CHN01``: stem of every output of the volume."""
        return isotropic_stem(self.specimen, self.timepoint, self.channels)


def isotropic_stem(specimen: int, timepoint: int | str, channels: tuple[int, int]) -> str:
    """``SPM00_TM000012_CHN00_CHN01``: stem of an isotropic volume's outputs (``"*"``: any timepoint)."""
    return f"{specimen_dir_name(specimen)}_{_timepoint_token(timepoint)}_CHN{channels[0]:02d}_CHN{channels[1]:02d}"


@dataclass(frozen=True)
class IsotropicPaths:
    """Where the outputs of one isotropic volume go."""

    root: Path
    volume_id: IsotropicId

    @property
    def folder(self) -> Path:
        return output_timepoint_folder(self.root, self.volume_id.specimen, self.volume_id.timepoint)

    @property
    def volume(self) -> Path:
        return self.folder / f"{self.volume_id.stem}{VOLUME_SUFFIX['zarr']}"

    @property
    def registration(self) -> Path:
        return self.folder / f"{self.volume_id.stem}{REGISTRATION_SUFFIX}"

    @property
    def record(self) -> Path:
        return self.folder / f"{self.volume_id.stem}{ISOTROPIC_RECORD_SUFFIX}"

    @property
    def projections_figure(self) -> Path:
        """``<isotropic root>/diagnostics/TM000012/SPM00_TM000012_CHN00_CHN01_projections.png``."""
        return timepoint_diagnostics_dir(self.root, self.volume_id.timepoint) / f"{self.volume_id.stem}_projections.png"


def transforms_over_time_figure(isotropic_root: Path, channels: tuple[int, int]) -> Path:
    """``<isotropic root>/diagnostics/transforms_over_time_CHN00_CHN01.png``: registrations estimated vs applied."""
    return diagnostics_dir(isotropic_root) / f"transforms_over_time_CHN{channels[0]:02d}_CHN{channels[1]:02d}.png"


def isotropic_series_files(root: Path, volume_id: IsotropicId, suffix: str) -> Iterator[Path]:
    """The ``suffix`` files (:data:`REGISTRATION_SUFFIX`, :data:`ISOTROPIC_RECORD_SUFFIX`) of the volume's channels at every timepoint."""
    stem = isotropic_stem(volume_id.specimen, "*", volume_id.channels)
    return (Path(root) / specimen_dir_name(volume_id.specimen)).glob(f"{_timepoint_token('*')}/{stem}{suffix}")


# --- time series and exports -----------------------------------------------------------------------


def fused_series_path(fused_root: Path, specimen: int, view: int, channel: int) -> Path:
    """``<fused root>/SPM00_VW00_CHN00.ome.zarr``: the live (t, z, y, x) time series of one fused view and channel."""
    return Path(fused_root) / f"{specimen_dir_name(specimen)}_VW{view:02d}_CHN{channel:02d}{SERIES_SUFFIX}"


def corrected_series_path(corrected_root: Path, specimen: int, camera: int, channel: int) -> Path:
    """``<corrected root>/SPM00_CM00_CHN00.ome.zarr``: the live (t, z, y, x) time series of one corrected camera."""
    return Path(corrected_root) / f"{specimen_dir_name(specimen)}_CM{camera:02d}_CHN{channel:02d}{SERIES_SUFFIX}"


def isotropic_series_path(isotropic_root: Path, specimen: int, channels: tuple[int, int]) -> Path:
    """``<isotropic root>/SPM00_CHN00_CHN01.ome.zarr``: the live (t, z, y, x) time series of the isotropic volumes."""
    return Path(isotropic_root) / f"{specimen_dir_name(specimen)}_CHN{channels[0]:02d}_CHN{channels[1]:02d}{SERIES_SUFFIX}"


def series_files(root: Path) -> list[Path]:
    """Every time series at the top of a correction, fusion or isotropic root (``SPM00_VW00_CHN00.ome.zarr``...), sorted."""
    return sorted(Path(root).glob(f"SPM[0-9][0-9]_*{SERIES_SUFFIX}"))


def bigstitcher_dataset_path(fused_root: Path) -> Path:
    """``<fused root>/dataset.xml``: the BigStitcher / BigDataViewer SpimData of the fused time series."""
    return Path(fused_root) / BIGSTITCHER_DATASET_NAME


def bigstitcher_lock_path(fused_root: Path) -> Path:
    """``<fused root>/.dataset.xml.lock``: held while the dataset XML is rewritten (workers append in parallel)."""
    return Path(fused_root) / f".{BIGSTITCHER_DATASET_NAME}.lock"


# --- raw archive ---------------------------------------------------------------------------------


class ArchivePaths(NamedTuple):
    """Where one raw stack's archive and record go."""

    archive: Path
    record: Path


def raw_archive_paths(archive_root: Path, relative_stack: Path) -> ArchivePaths:
    """Archive and record paths of a raw stack, mirroring its place in the acquisition.

    Parameters
    ----------
    archive_root : Path
        Root of the raw archive.
    relative_stack : Path
        The raw stack's path relative to the acquisition root (``SPM00/TM00012/ANG000/<stem>.stack``).

    Returns
    -------
    ArchivePaths
        ``<archive root>/<folders of the stack>/<stem>.ome.zarr`` and ``.../<stem>.archive.json``.
    """
    relative_stack = Path(relative_stack)
    folder = Path(archive_root) / relative_stack.parent
    stem = relative_stack.name.removesuffix(".stack")
    return ArchivePaths(archive=folder / f"{stem}{ARCHIVE_SUFFIX}", record=folder / f"{stem}{ARCHIVE_RECORD_SUFFIX}")


# --- diagnostics and service ------------------------------------------------------------------------


def diagnostics_dir(fused_root: Path) -> Path:
    """``<fused root>/diagnostics``: every diagnostic figure (of the isotropic volumes under the isotropic root)."""
    return Path(fused_root) / DIAGNOSTICS_DIR_NAME


def timepoint_diagnostics_dir(fused_root: Path, timepoint: int) -> Path:
    """``<fused root>/diagnostics/TM000012``: the figures of one timepoint's pairs (one folder per pair) or volumes."""
    return diagnostics_dir(fused_root) / output_timepoint_dir_name(timepoint)


def parameters_over_time_figure(fused_root: Path, cameras: tuple[int, int]) -> Path:
    """``<fused root>/diagnostics/parameters_over_time_cam0_1.png``: a pair series' parameters over time."""
    return diagnostics_dir(fused_root) / f"parameters_over_time_cam{cameras[0]}_{cameras[1]}.png"


def parameters_over_time_figures(fused_root: Path) -> list[Path]:
    """Every parameters-over-time figure written so far, sorted."""
    return sorted(diagnostics_dir(fused_root).glob("parameters_over_time_*.png"))


def timepoint_output_folders(corrected_root: Path, fused_root: Path, isotropic_root: Path, specimen: int, timepoint: int) -> list[Path]:
    """Every folder that holds outputs of one timepoint: corrected, fused, isotropic, its diagnostics and their pair folders."""
    diagnostics = timepoint_diagnostics_dir(fused_root, timepoint)
    folders = [output_timepoint_folder(root, specimen, timepoint) for root in (corrected_root, fused_root, isotropic_root)]
    return [*folders, diagnostics, *(diagnostics.glob("cam*") if diagnostics.is_dir() else [])]


def service_dir(fused_root: Path) -> Path:
    """``<fused root>/service``: the journal, problems list and lock of the service."""
    return Path(fused_root) / SERVICE_DIR_NAME


def journal_path(fused_root: Path) -> Path:
    """``<fused root>/service/journal.jsonl``: one line per piece of work done."""
    return service_dir(fused_root) / JOURNAL_NAME


def problems_path(fused_root: Path) -> Path:
    """``<fused root>/service/problems.jsonl``: one line per problem met."""
    return service_dir(fused_root) / PROBLEMS_NAME


def alerts_path(fused_root: Path) -> Path:
    """``<fused root>/service/alerts.jsonl``: one line per quality alert (parameter jump, dark or missing camera)."""
    return service_dir(fused_root) / ALERTS_NAME


def watcher_lock_path(fused_root: Path) -> Path:
    """``<fused root>/service/watcher.lock``: one watcher per acquisition."""
    return service_dir(fused_root) / WATCHER_LOCK_NAME
