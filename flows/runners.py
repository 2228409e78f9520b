"""The task runner of the flows: a thread pool by default, a Dask cluster on request (prefect-dask).

Served and worker-run flows take it from the environment (``ISOVIEW_TASK_RUNNER=threads|dask``,
``ISOVIEW_MAX_WORKERS``, ``ISOVIEW_DASK_ADDRESS``), so a deployment picks it with job variables;
in-process callers pass an :class:`~flows.service_config.ExecutionConfig`.
"""

from __future__ import annotations

import os

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from flows.service_config import ExecutionConfig


def make_task_runner(execution: ExecutionConfig) -> TaskRunner:
    """Threads, a Dask cluster at ``dask_address``, or a Dask LocalCluster of ``max_workers`` processes."""
    if execution.task_runner == "threads":
        return ThreadPoolTaskRunner(max_workers=execution.max_workers)
    from prefect_dask import DaskTaskRunner

    if execution.dask_address:
        return DaskTaskRunner(address=execution.dask_address)
    return DaskTaskRunner(cluster_kwargs={"n_workers": execution.max_workers, "threads_per_worker": 1, "dashboard_address": None})


def execution_from_environment() -> ExecutionConfig:
    """The execution settings of served flows, from ``ISOVIEW_*`` environment variables (defaults otherwise)."""
    return ExecutionConfig(
        task_runner=os.environ.get("ISOVIEW_TASK_RUNNER", "threads"),
        max_workers=int(os.environ.get("ISOVIEW_MAX_WORKERS", "2")),
        dask_address=os.environ.get("ISOVIEW_DASK_ADDRESS") or None,
    )


def environment_for(execution: ExecutionConfig) -> dict[str, str]:
    """The ``ISOVIEW_*`` variables that make served flows use `execution`'s task runner."""
    variables = {"ISOVIEW_TASK_RUNNER": execution.task_runner, "ISOVIEW_MAX_WORKERS": str(execution.max_workers)}
    if execution.dask_address:
        variables["ISOVIEW_DASK_ADDRESS"] = execution.dask_address
    return variables
