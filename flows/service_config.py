"""The service configuration: one YAML file for paths, cameras, pairs, correction, fusion, window,
codec (the :class:`~isoview_core.config.ProcessingConfig`), how the watcher watches and where the
work runs; and the layering of settings: a config file's values, command-line flags on top."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from isoview_core.config import ProcessingConfig
from isoview_core.errors import IsoviewError

Model = TypeVar("Model", bound=BaseModel)

COMMAND_LINE = "command line"
"""The source name of the settings the command-line flags give, in validation errors."""


class WatchConfig(BaseModel):
    """How the watcher decides that a timepoint is complete and when the acquisition has ended."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fusion: bool = Field(True, description="Fuse each filled window; off = correction and compression only (fuse later with `isoview run`).")
    polling: bool = Field(False, description="Poll the folder instead of OS events (network drives, SMB/NFS shares).")
    scan_interval_s: float = Field(2.0, gt=0, description="Reconciliation scan period: events are hints, the scan is the truth.")
    settle_s: float = Field(2.0, ge=0, description="A full-size stack counts as written once unchanged this long (or once the next timepoint starts).")
    stalled_after_s: float = Field(
        600.0, gt=0, description="A timepoint still incomplete this long after a later one completed is given up and reported as a problem."
    )
    disk_full_retry_s: float = Field(60.0, gt=0, description="A job that failed on a full disk is retried after this long (its partial output is removed).")
    idle_timeout_s: float | None = Field(
        None,
        gt=0,
        description=(
            "End of acquisition: after this long without new data, fuse the tail with one-sided windows and stop "
            "(and the longest wait for an acquisition folder the microscope has not created yet). None = run until stopped."
        ),
    )
    alert_block: str | None = Field(
        None,
        pattern=r"^[a-z0-9-]+/[^/]+$",
        description=(
            "Prefect notification block that each new quality alert is sent to, as block-type/name "
            "(slack-webhook/lab, custom-webhook/pager...; create it in the UI under Blocks). None = alerts only in the UI and problems.jsonl."
        ),
    )


class ExecutionConfig(BaseModel):
    """Where the flows run: in this process (embedded Prefect), or on a Prefect server's workers; tasks in threads or on Dask."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    task_runner: Literal["threads", "dask"] = Field("threads", description="Parallel tasks inside a flow: a thread pool, or a Dask cluster.")
    max_workers: int | None = Field(
        None,
        ge=1,
        description=(
            "Threads (or local Dask workers) per flow: camera stacks corrected, pairs fused at once. None = the cores, "
            "bounded by memory: 2 of the acquisition's largest stacks per worker within 80 % of the memory available "
            "when the first job starts (as `isoview correct`/`fuse` choose their --workers), shared by the watcher's "
            "correction and fusion, which run side by side."
        ),
    )
    dask_address: str | None = Field(None, description="Scheduler of an existing Dask cluster (tcp://host:8786); None = a LocalCluster.")
    deployment: str | None = Field(
        None, description="Submit to the deployments served by `isoview serve` under this name (Prefect server + workers); None = run in-process."
    )
    fallback_in_process: bool = Field(False, description="Run in-process when the Prefect server cannot be reached, instead of waiting for it.")
    malloc_mmap_threshold_bytes: int | None = Field(
        131072,
        ge=0,
        le=32 * 2**20,
        description=(
            "glibc's mmap threshold of the watcher and `isoview serve` (and the processes they start): image buffers get memory "
            "mappings of their own, returned when freed, so the service's memory levels off lower (README, \"Soak test\"), "
            "for about 7 % of correction throughput. None = glibc's adaptive default. A MALLOC_MMAP_THRESHOLD_ in the environment wins."
        ),
    )


class ServiceConfig(BaseModel):
    """Everything the service needs, as read from its YAML file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    processing: ProcessingConfig
    watch: WatchConfig = Field(default_factory=WatchConfig)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `override` laid over it: sections (mappings) merged key by key, any other value replaced.

    Parameters
    ----------
    base : Mapping
        Settings, e.g. read from a config file.
    override : Mapping
        Settings that win, e.g. the command-line flags given.

    Returns
    -------
    dict
        A new mapping; neither input is changed.
    """
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def merge_layers(model: type[Model], layers: Sequence[tuple[str, Mapping[str, Any]]]) -> Model:
    """Validate settings given in layers (a config file, then the command line), each laid over the ones before.

    Parameters
    ----------
    model : type of BaseModel
        The settings' model, e.g. :class:`ServiceConfig` or :class:`~isoview_core.config.ProcessingConfig`.
    layers : sequence of (str, Mapping)
        ``(source, settings)`` pairs, lowest first: the source names the layer in errors (a file's path, or
        :data:`COMMAND_LINE`), the settings may leave out any field (its value then comes from a lower layer
        or the model's default).

    Returns
    -------
    Model
        The validated settings.

    Raises
    ------
    IsoviewError
        The merged settings do not validate: one line naming the source that set the first bad field (the
        first layer when no layer set it, e.g. a required field missing), the field and what is wrong.
    """
    merged: dict[str, Any] = {}
    for _, settings in layers:
        merged = deep_merge(merged, settings)
    try:
        return model.model_validate(merged)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        setters = [source for source, settings in layers if _holds(settings, first["loc"])]
        source = setters[-1] if setters else layers[0][0] if layers else None
        prefix = f"{source}: " if source else ""
        raise IsoviewError(f"{prefix}{where}: {first['msg']}") from error


def _holds(settings: Mapping[str, Any], location: Sequence[int | str]) -> bool:
    """Whether `settings` sets the field at `location` (a pydantic error's ``loc``)."""
    current: Any = settings
    for part in location:
        if not isinstance(current, Mapping) or part not in current:
            return False
        current = current[part]
    return True


def read_settings(path: Path) -> dict[str, Any]:
    """The settings of a YAML config file, as a mapping (not validated yet).

    Parameters
    ----------
    path : Path
        The YAML file.

    Returns
    -------
    dict
        Its top-level mapping (empty for an empty file).

    Raises
    ------
    IsoviewError
        The file cannot be read, is not YAML, or is not a mapping.
    """
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise IsoviewError(f"{path}: cannot read the service config ({error})") from error
    if not isinstance(raw, dict):
        raise IsoviewError(f"{path}: a service config is a mapping with processing / watch / execution sections")
    return raw


def load_service_config(path: Path | None, overrides: Mapping[str, Any] | None = None) -> ServiceConfig:
    """Read and validate a service YAML file, with `overrides` (the command line's settings) laid over it.

    Parameters
    ----------
    path : Path or None
        The YAML file; None: the defaults (then `overrides` must name ``processing.acquisition``).
    overrides : Mapping, optional
        Settings nested like the file (``{"processing": {"temporal": {"window": 3}}}``): each field they
        set wins over the file's, the file's other fields stay (:func:`deep_merge`).

    Returns
    -------
    ServiceConfig
        The validated configuration.

    Raises
    ------
    IsoviewError
        The file cannot be read, is not YAML, or the merged settings do not validate (the message names the
        file, or the command line, that set the first bad field).
    """
    layers: list[tuple[str, Mapping[str, Any]]] = []
    if path is not None:
        layers.append((str(path), read_settings(path)))
    if overrides:
        layers.append((COMMAND_LINE, overrides))
    return merge_layers(ServiceConfig, layers)


def example_config_yaml(acquisition: str = "/data/isoview/my_experiment") -> str:
    """A commented example service config: every field with its default and description."""
    lines = [
        "# isoview service configuration (validated by flows.service_config.ServiceConfig).",
        "# Every field is optional except processing.acquisition; the values shown are the defaults.",
    ]
    example = ServiceConfig(processing=ProcessingConfig(acquisition=Path(acquisition)))
    _emit_model(example, lines, indent=0)
    return "\n".join(lines) + "\n"


def _emit_model(model: BaseModel, lines: list[str], indent: int) -> None:
    """Append ``key: value  # description`` lines for each field of `model`, nested models as sections."""
    pad = "  " * indent
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        if field.description:
            lines.append(f"{pad}# {field.description}")
        if isinstance(value, BaseModel):
            lines.append(f"{pad}{name}:")
            _emit_model(value, lines, indent + 1)
            continue
        dumped = yaml.safe_dump({name: _plain(value)}, default_flow_style=True, width=1000).strip()
        lines.append(pad + dumped.removeprefix("{").removesuffix("}"))


def _plain(value: Any) -> Any:
    """A YAML-safe form of a field value (paths as strings, tuples as lists, models as mappings)."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    return value
