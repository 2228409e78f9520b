"""What every flow checks first: its config matches the acquisition it was given, and every path lies
under the allowed data roots (``ISOVIEW_DATA_ROOTS``), since flows can be started from the UI or API;
then it applies the config's process-wide output setting (fsync)."""

from __future__ import annotations

from pathlib import Path

from isoview_core.config import ProcessingConfig
from isoview_core.errors import IsoviewError
from isoview_core.formats.atomic import set_fsync
from isoview_core.service.paths import allowed_data_roots, check_config_paths


def flow_config(acquisition: Path, config: ProcessingConfig | None) -> ProcessingConfig:
    """The config a flow runs with (defaults for `acquisition` when none is given), after the input checks.

    Its ``output.fsync`` is applied to this process, so a served run or a Dask worker honours it too.

    Raises
    ------
    IsoviewError
        The config names another acquisition, or a path lies outside the allowed data roots.
    """
    config = config or ProcessingConfig(acquisition=acquisition)
    if Path(config.acquisition).resolve() != Path(acquisition).resolve():
        raise IsoviewError(f"{acquisition}: the config given is for another acquisition ({config.acquisition})")
    check_config_paths(config, allowed_data_roots())
    set_fsync(config.output.fsync)
    return config
