"""Every command-line option of ``isoview``, declared once, and the one function that turns them into settings.

Each option is an ``Annotated`` type a command's parameter takes (its default stays at the parameter, so one
declaration serves commands with different defaults). :func:`processing_flags` and :func:`execution_flags` map
them to partial settings holding only the flags given, which :func:`flows.service_config.merge_layers` lays over
a config file's values (or over the defaults when there is no file).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from flows.cli.common import fail
from flows.service_config import COMMAND_LINE, merge_layers
from isoview_core.config import ProcessingConfig
from isoview_core.errors import IsoviewError
from isoview_core.formats.atomic import set_fsync
from isoview_core.formats.codecs import CodecConfig
from isoview_core.layout import CORRECTED_ROOT_SUFFIX, FUSED_ROOT_SUFFIX, ISOTROPIC_ROOT_SUFFIX
from isoview_core.timepoints import parse_timepoints


class Blending(str, Enum):
    adaptive = "adaptive"
    geometric = "geometric"
    average = "average"
    wavelet = "wavelet"


class VolumeFormat(str, Enum):
    zarr = "zarr"
    klb = "klb"
    tif = "tif"


class TaskRunnerKind(str, Enum):
    threads = "threads"
    dask = "dask"


# what is processed, and where the outputs go
Acquisition = Annotated[Path, typer.Argument(help="Raw acquisition folder (nested SPM##/TM##### or flat layout).")]
AcquisitionOrConfig = Annotated[Path | None, typer.Argument(help="Acquisition folder the microscope writes (or give it in --config).")]
ConfigFile = Annotated[Path | None, typer.Option("--config", "-c", help="Service YAML (see `isoview config --example`); flags given override it.")]
CorrectedRoot = Annotated[Path | None, typer.Option("--corrected", help=f"Corrected root (default: <acquisition>{CORRECTED_ROOT_SUFFIX}).")]
CorrectedOutput = Annotated[Path | None, typer.Option("--output", "-o", help=f"Output root (default: <acquisition>{CORRECTED_ROOT_SUFFIX} beside it).")]
FusedOutput = Annotated[Path | None, typer.Option("--output", "-o", help=f"Fused root (default: <acquisition>{FUSED_ROOT_SUFFIX}).")]
Timepoints = Annotated[str | None, typer.Option(help="Timepoints, e.g. 0,1,5-9 (default: all).")]
Overwrite = Annotated[bool, typer.Option(help="Redo work that is already complete.")]

# correction outputs
Format = Annotated[VolumeFormat, typer.Option("--format", help="Volume format.")]
Codec = Annotated[str, typer.Option(help="OME-Zarr codec NAME[:LEVEL[:SHUFFLE]], e.g. blosc-zstd:5, jpegls.")]
PyramidLevels = Annotated[int, typer.Option(help="Extra 2x-downsampled levels in each OME-Zarr (smoother zooming in viewers).")]
NoFsync = Annotated[
    bool, typer.Option("--no-fsync", help="Publish outputs without fsync: faster, but a power cut can leave them truncated (scratch runs only).")
]

# fusion
Window = Annotated[int | None, typer.Option(help="Temporal smoothing window half-width w: timepoints t-w .. t+w (default 5).")]
BlendingOption = Annotated[Blending, typer.Option("--blending", help="Blending of the two cameras of a pair.")]
Static = Annotated[bool, typer.Option("--static", help="One set of parameters for the whole acquisition.")]
Workers = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="Stacks or pairs processed at once, in worker threads (default: every core, as far as the memory allows).",
    ),
]
NoDiagnostics = Annotated[bool, typer.Option("--no-diagnostics", help="Skip the fusion diagnostic PNGs.")]

# raw archive
ArchiveRaw = Annotated[bool, typer.Option("--archive-raw", help="Archive each raw stack losslessly and verify it (beside the acquisition).")]
DeleteRaw = Annotated[
    bool, typer.Option("--delete-raw-after-verify", help="With --archive-raw: delete each raw stack once its archive is verified.")
]

# where the service's work runs
TaskRunner = Annotated[TaskRunnerKind | None, typer.Option(help="Parallel tasks in threads (default) or on Dask.")]
DaskAddress = Annotated[str | None, typer.Option(help="Dask scheduler tcp://host:8786 (default: a local cluster).")]

# the simulated microscope
IsotropicOutput = Annotated[Path | None, typer.Option("--output", "-o", help=f"Isotropic root (default: <acquisition>{ISOTROPIC_ROOT_SUFFIX}).")]
FusedRoot = Annotated[Path | None, typer.Option("--fused", help=f"Fused root (default: <acquisition>{FUSED_ROOT_SUFFIX}).")]
IsotropicVoxel = Annotated[float | None, typer.Option("--voxel", help="Isotropic voxel in um (default: twice the finer lateral pixel).")]
Deconvolve = Annotated[int | None, typer.Option("--deconvolve", help="Multi-view deconvolution iterations after the fusion (default 2: the isotropic target; 0: the content-weighted fusion only, not isotropic).")]
Isotropic = Annotated[bool, typer.Option("--isotropic", help="Also make the isotropic volume of each timepoint (VW90 registered onto VW00, fused).")]
Shape = Annotated[tuple[int, int, int], typer.Option(help="Stack shape Z Y X of every camera.")]
TimepointCount = Annotated[int, typer.Option("--timepoints", help="Timepoints the simulated microscope records.")]


def given(settings: Mapping[str, Any]) -> dict[str, Any]:
    """`settings` without the values left at None (flags not given) and without the sections left empty.

    Parameters
    ----------
    settings : Mapping
        Nested settings from command-line flags, None where a flag was not given.

    Returns
    -------
    dict
        Only what the command line sets, to lay over a config file's values.
    """
    kept: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, Mapping):
            value = given(value)
            if not value:
                continue
        if value is not None:
            kept[key] = value
    return kept


def processing_flags(
    *,
    acquisition: Path | None = None,
    corrected_dir: Path | None = None,
    fused_dir: Path | None = None,
    timepoints: str | None = None,
    overwrite: bool = False,
    volume_format: VolumeFormat | None = None,
    codec: str | None = None,
    pyramid_levels: int | None = None,
    no_fsync: bool = False,
    window: int | None = None,
    blending: Blending | None = None,
    static: bool = False,
    no_diagnostics: bool = False,
    archive_raw: bool = False,
    delete_raw_after_verify: bool = False,
    isotropic: bool = False,
    isotropic_dir: Path | None = None,
    voxel: float | None = None,
    deconvolve: int | None = None,
) -> dict[str, Any]:
    """The ``processing`` settings the command-line flags give, as a partial :class:`ProcessingConfig` mapping.

    Parameters
    ----------
    acquisition, corrected_dir, fused_dir, timepoints, overwrite, volume_format, codec, pyramid_levels, no_fsync, window, blending, static, no_diagnostics, archive_raw, delete_raw_after_verify, isotropic, isotropic_dir, voxel, deconvolve
        The flags of a command: None (or False for an on/off flag) where the flag was not given.

    Returns
    -------
    dict
        Only the fields the flags set, nested like the model (``{"temporal": {"window": 3}}``), so that a
        config file's other fields of the same section stay. ``--codec`` sets the whole codec section
        (the CLI form names the codec, its level and shuffle, the other fields at their defaults).

    Raises
    ------
    ValueError
        A timepoint list or codec that does not parse.
    """
    return given(
        {
            "acquisition": acquisition,
            "corrected_dir": corrected_dir,
            "fused_dir": fused_dir,
            "timepoints": parse_timepoints(timepoints),
            "overwrite": overwrite or None,
            "save_diagnostics": False if no_diagnostics else None,
            "output": {
                "format": volume_format.value if volume_format else None,
                "codec": CodecConfig.parse(codec) if codec is not None else None,
                "pyramid_levels": pyramid_levels,
                "fsync": False if no_fsync else None,
            },
            "fusion": {"fusion_type": blending.value if blending else None},
            "temporal": {"window": window, "static_parameters": static or None},
            "archive": {"enabled": archive_raw or None, "delete_raw_after_verify": delete_raw_after_verify or None},
            "isotropic_dir": isotropic_dir,
            "isotropic": {"enabled": isotropic or None, "registration": {"voxel_um": voxel}, "deconvolution_iterations": deconvolve},
        }
    )


def execution_flags(task_runner: TaskRunnerKind | None = None, dask_address: str | None = None, deployment: str | None = None) -> dict[str, Any]:
    """The ``execution`` settings the command-line flags give (None where not given), for :func:`given`.

    Parameters
    ----------
    task_runner, dask_address, deployment
        The flags of a service command: None where the flag was not given.

    Returns
    -------
    dict
        The fields of :class:`~flows.service_config.ExecutionConfig` they set.
    """
    return {"task_runner": task_runner.value if task_runner else None, "dask_address": dask_address, "deployment": deployment}


def processing_config(**flags: Any) -> ProcessingConfig:
    """The processing settings of a library command (no config file): the defaults with the flags given on top.

    Also applies the process-wide fsync setting of the outputs (``--no-fsync``).

    Parameters
    ----------
    **flags
        Keyword arguments of :func:`processing_flags`.

    Returns
    -------
    ProcessingConfig
        The validated settings; a one-line error (exit 2) naming the bad flag instead.
    """
    try:
        config = merge_layers(ProcessingConfig, [(COMMAND_LINE, processing_flags(**flags))])
    except (IsoviewError, ValueError) as error:
        fail(str(error).splitlines()[0])
    set_fsync(config.output.fsync)
    return config
