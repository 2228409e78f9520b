"""The task runner of the flows: a thread pool by default, a Dask cluster on request (prefect-dask).

Served and worker-run flows take it from the environment (``ISOVIEW_TASK_RUNNER=threads|dask``,
``ISOVIEW_MAX_WORKERS``, ``ISOVIEW_DASK_ADDRESS``), so a deployment picks it with job variables;
in-process callers pass an :class:`~flows.service_config.ExecutionConfig`.

Dask workers report their task runs to the Prefect API of the settings that each task carries from
the flow's process (prefect-dask serializes them with the task), so the workers themselves need no
Prefect setting. That API must be a Prefect server the workers reach and that outlives the flow run:
``prefect server start --host 0.0.0.0`` and ``PREFECT_API_URL=http://<host>:4200/api`` in the flow's
environment. Without ``PREFECT_API_URL`` the flow runs on a temporary server of its own on 127.0.0.1,
and every Dask worker process starts a temporary server of its own on the flow's database path: seconds
per worker, SQLite "database is locked" errors, and a long-lived worker keeps reporting to the first
flow's database. :func:`make_task_runner` warns of it.
"""

from __future__ import annotations

import functools
import os
import warnings

from prefect.settings import PREFECT_API_URL
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from flows.service_config import ExecutionConfig
from isoview_core.acquisition import Acquisition
from isoview_core.pipeline.correction import largest_stack_bytes
from isoview_core.pipeline.parallel import FUSION_STACKS_PER_WORKER, worker_count


NO_API_FOR_DASK_WORKERS = (
    "Dask task runner without PREFECT_API_URL: each Dask worker will start a temporary Prefect server of its own; "
    "run `prefect server start` (reachable from the workers) and set PREFECT_API_URL for the flows"
)


def resolved_execution(execution: ExecutionConfig, acquisition: Acquisition, selection: list[tuple[int, int]] | None = None) -> ExecutionConfig:
    """`execution` with an automatic ``max_workers`` resolved for this acquisition's stacks (unchanged when set).

    Parameters
    ----------
    execution : ExecutionConfig
        The settings; ``max_workers=None`` asks for the cores, bounded by memory.
    acquisition : Acquisition
        What the flows will process: its largest stack sets each worker's memory.
    selection : list of (specimen, timepoint), optional
        The timepoints to size for (default: the first timepoint of each specimen; the stacks of an acquisition
        keep their size).

    Returns
    -------
    ExecutionConfig
        With ``max_workers`` as :func:`~isoview_core.pipeline.parallel.worker_count` gives it for
        :data:`~isoview_core.pipeline.parallel.FUSION_STACKS_PER_WORKER` (the larger budget: one pool runs both stages).
    """
    if execution.max_workers is not None:
        return execution
    if selection is None:
        selection = [(specimen, timepoints[0]) for specimen in acquisition.specimens() if (timepoints := acquisition.timepoints(specimen))]
    workers = worker_count(None, stack_bytes=largest_stack_bytes(acquisition, selection), stacks_per_worker=FUSION_STACKS_PER_WORKER)
    return execution.model_copy(update={"max_workers": workers})


def make_task_runner(execution: ExecutionConfig) -> TaskRunner:
    """Threads, a Dask cluster at ``dask_address``, or a Dask LocalCluster of ``max_workers`` processes.

    An unresolved ``max_workers`` (None, see :func:`resolved_execution`) gives every core, unbounded by memory:
    what a served flow gets without ``ISOVIEW_MAX_WORKERS``.
    """
    if execution.task_runner == "threads":
        return ThreadPoolTaskRunner(max_workers=execution.max_workers or _cores())
    from prefect_dask import DaskTaskRunner

    if not PREFECT_API_URL.value():
        _warn_once(NO_API_FOR_DASK_WORKERS)
    if execution.dask_address:
        return DaskTaskRunner(address=execution.dask_address)
    return DaskTaskRunner(cluster_kwargs={"n_workers": execution.max_workers or _cores(), "threads_per_worker": 1, "dashboard_address": None})


def _cores() -> int:
    """The cores this process may run on (no memory bound: no stack size is known)."""
    return worker_count(None, stack_bytes=0, stacks_per_worker=FUSION_STACKS_PER_WORKER)


@functools.cache
def _warn_once(message: str) -> None:
    warnings.warn(message, RuntimeWarning, stacklevel=3)


def execution_from_environment() -> ExecutionConfig:
    """The execution settings of served flows, from ``ISOVIEW_*`` environment variables (defaults otherwise)."""
    return ExecutionConfig(
        task_runner=os.environ.get("ISOVIEW_TASK_RUNNER", "threads"),
        max_workers=int(os.environ["ISOVIEW_MAX_WORKERS"]) if os.environ.get("ISOVIEW_MAX_WORKERS") else None,
        dask_address=os.environ.get("ISOVIEW_DASK_ADDRESS") or None,
    )


def environment_for(execution: ExecutionConfig) -> dict[str, str]:
    """The ``ISOVIEW_*`` variables that make served flows use `execution`'s task runner."""
    variables = {"ISOVIEW_TASK_RUNNER": execution.task_runner}
    if execution.max_workers is not None:
        variables["ISOVIEW_MAX_WORKERS"] = str(execution.max_workers)
    if execution.dask_address:
        variables["ISOVIEW_DASK_ADDRESS"] = execution.dask_address
    return variables
