"""The service configuration: one YAML file for paths, cameras, pairs, correction, fusion, window,
codec (the :class:`~isoview_core.config.ProcessingConfig`), how the watcher watches and where the
work runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from isoview_core.config import ProcessingConfig
from isoview_core.errors import IsoviewError


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


class ExecutionConfig(BaseModel):
    """Where the flows run: in this process (embedded Prefect), or on a Prefect server's workers; tasks in threads or on Dask."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    task_runner: Literal["threads", "dask"] = Field("threads", description="Parallel tasks inside a flow: a thread pool, or a Dask cluster.")
    max_workers: int = Field(2, ge=1, description="Threads (or local Dask workers) per flow: camera stacks corrected at once.")
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


def load_service_config(path: Path, **overrides: Any) -> ServiceConfig:
    """Read and validate a service YAML file; `overrides` replace top-level ``processing`` fields.

    Raises
    ------
    IsoviewError
        The file cannot be read, is not YAML, or does not validate (the message names the first bad field).
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise IsoviewError(f"{path}: cannot read the service config ({error})") from error
    if not isinstance(raw, dict):
        raise IsoviewError(f"{path}: a service config is a mapping with processing / watch / execution sections")
    raw.setdefault("processing", {}).update({key: value for key, value in overrides.items() if value is not None})
    try:
        return ServiceConfig.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise IsoviewError(f"{path}: {where}: {first['msg']}") from error


def example_config_yaml(acquisition: str = "/data/isoview/my_experiment") -> str:
    """A commented example service config: every field with its default and description."""
    lines = [
        "# isoview service configuration (validated by isoview_core.service.config.ServiceConfig).",
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
