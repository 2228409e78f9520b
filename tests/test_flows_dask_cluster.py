"""``process_acquisition`` on a Dask cluster started the way a lab starts one: a ``dask scheduler`` and two
``dask worker`` processes of their own, on the loopback address, the data on a path they all see.

The flow runs in a process of its own, given the cluster's address as ``isoview run --task-runner dask
--dask-address`` gives it (``process_acquisition(..., execution=...)``: its subflows' task runner), and with
``PREFECT_API_URL`` pointing at this session's Prefect server: the Prefect settings travel with each task to
the workers, which are started without any Prefect setting (a Prefect home of their own, as on another machine).
The same acquisition processed in-process (threads) must give the same outputs, byte for byte.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from flow_run_helpers import assert_same_outputs, clean_environment, run_config, stop
from waiting import wait_until

REPOSITORY = Path(__file__).resolve().parents[1]
STARTUP_TIMEOUT_S = 120  # a loaded 2-core machine imports distributed slowly; only a failing start waits that long
FLOW_TIMEOUT_S = 600

SUBMITTED_TASKS = Counter({"correct_stack_task": 8, "estimate_pair_task": 4, "fuse_pair_task": 4})
"""The tasks the flows submit for the small acquisition: 2 timepoints x 4 stacks, then 2 timepoints x 2 pairs."""

RUN_ON_CLUSTER = """
import json, sys
from flows.acquisition import process_acquisition
from flows.service_config import ExecutionConfig
from isoview_core.config import ProcessingConfig

config = ProcessingConfig.model_validate_json(sys.argv[1])
execution = ExecutionConfig(task_runner="dask", dask_address=sys.argv[2])
state = process_acquisition(config.acquisition, None, config, execution=execution, return_state=True)
print(json.dumps({"flow_run_id": str(state.state_details.flow_run_id), "summary": state.result().model_dump()}))
"""
"""Runs in a fresh process with Prefect settings of its own, given the cluster as ``isoview run --task-runner dask
--dask-address ADDRESS`` gives it (``process_acquisition(..., execution=...)``, the subflows' task runner)."""


def _dask_command(role: str) -> list[str]:
    """The ``dask scheduler`` / ``dask worker`` command of this environment (its module where the script is missing)."""
    script = Path(sys.executable).with_name("dask")
    return [str(script), role] if script.is_file() else [sys.executable, "-m", f"distributed.cli.dask_{role}"]


@pytest.fixture()
def dask_cluster(tmp_path):
    """A scheduler on 127.0.0.1 and two one-thread workers, each started as its own ``dask`` process.

    Yields a connected ``distributed.Client`` and the worker log files; every process (and what it started)
    is ended afterwards, also when the test fails.
    """
    from distributed import Client

    cluster = tmp_path / "cluster"
    cluster.mkdir()
    scheduler_file = cluster / "scheduler.json"
    # a Prefect home of their own and no PREFECT_API_URL: they learn the API from the tasks, like workers elsewhere
    environment = clean_environment(PREFECT_HOME=str(cluster / "prefect-home"))
    processes: list[subprocess.Popen] = []
    logs: list[Path] = []

    def start(name: str, command: list[str]) -> None:
        logs.append(cluster / f"{name}.log")
        with open(logs[-1], "w") as log:
            processes.append(
                subprocess.Popen(command, cwd=cluster, env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            )

    client = None
    try:
        # --idle-timeout and --death-timeout: should this process be killed before its finalizer runs, they stop on their own
        start("scheduler", [*_dask_command("scheduler"), "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                            "--scheduler-file", str(scheduler_file), "--idle-timeout", "300s"])  # fmt: skip
        for index in (1, 2):
            start(f"worker{index}", [*_dask_command("worker"), "--scheduler-file", str(scheduler_file), "--nthreads", "1", "--nworkers", "1",
                                     "--no-dashboard", "--name", f"isoview-worker-{index}", "--local-directory", str(cluster / f"worker{index}"),
                                     "--death-timeout", "60s"])  # fmt: skip

        def scheduler_address() -> str | None:
            assert processes[0].poll() is None, "the scheduler exited: " + logs[0].read_text()[-2000:]
            try:
                return json.loads(scheduler_file.read_text())["address"]
            except (OSError, ValueError, KeyError):  # not written yet
                return None

        client = Client(wait_until(scheduler_address, STARTUP_TIMEOUT_S, "the scheduler's address"), timeout=STARTUP_TIMEOUT_S)
        client.wait_for_workers(2, timeout=STARTUP_TIMEOUT_S)
        yield client, logs[1:]
    finally:
        if client is not None:
            client.close()
        for process in reversed(processes):
            stop(process)


def _task_runs_under(flow_run_id: str) -> Counter:
    """The task runs of the subflows of a flow run in the Prefect API, as (task function, final state) counts."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, FlowRunFilterParentFlowRunId

    with get_client(sync_client=True) as client:
        subflows = client.read_flow_runs(flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id])))
        task_runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id for run in subflows])))
    return Counter((run.task_key.rsplit("-", 1)[0], run.state_type.value) for run in task_runs)


def test_process_acquisition_on_a_separately_started_dask_cluster_gives_the_in_process_outputs(
    prefect_harness, small_acquisition, tmp_path, dask_cluster
):
    from prefect.settings import PREFECT_API_URL
    from prefect.task_runners import ThreadPoolTaskRunner

    from flows.acquisition import process_acquisition
    from flows.correction import correct_timepoint
    from flows.fusion import fuse_window

    client, worker_logs = dask_cluster
    address = client.scheduler.address
    assert address.startswith("tcp://127.0.0.1:")

    # the reference: this process, the subflows' default thread pool
    assert isinstance(correct_timepoint.task_runner, ThreadPoolTaskRunner) and isinstance(fuse_window.task_runner, ThreadPoolTaskRunner)
    local = run_config(small_acquisition, tmp_path / "in-process")
    assert process_acquisition(small_acquisition, None, local).model_dump() == {"corrected_timepoints": 2, "fused_pairs": 4}

    # the same flow in a process of its own, its subflows' tasks on the cluster
    on_cluster = run_config(small_acquisition, tmp_path / "dask")
    environment = clean_environment(
        PREFECT_API_URL=PREFECT_API_URL.value(),  # this session's server: the lab's `prefect server start`
        PREFECT_HOME=str(tmp_path / "flow-prefect-home"),
        PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL="WARNING",
    )
    result = subprocess.run(
        [sys.executable, "-c", RUN_ON_CLUSTER, on_cluster.model_dump_json(), address],
        cwd=REPOSITORY, env=environment, capture_output=True, text=True, timeout=FLOW_TIMEOUT_S,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["summary"] == {"corrected_timepoints": 2, "fused_pairs": 4}

    # every submitted task ran on one of the two workers, and both took part
    def executed_tasks(dask_worker) -> tuple[int, list[str]]:  # runs on each worker (a local function: sent by value, not by module)
        # its state machine's count of executions, and the keys of its transitions (key, start, finish, ...) out of "executing"
        log = dask_worker.state.log
        return dask_worker.state.executed_count, [entry[0] for entry in log if len(entry) > 3 and entry[1] == "executing" and entry[2] in ("memory", "error")]

    executed = client.run(executed_tasks)
    per_worker = {worker: Counter(key.rsplit("-", 1)[0] for key in keys) for worker, (_, keys) in executed.items()}
    assert len(per_worker) == 2 and all(per_worker.values()), per_worker
    assert sum(per_worker.values(), Counter()) == SUBMITTED_TASKS, per_worker
    assert sum(count for count, _ in executed.values()) == SUBMITTED_TASKS.total()
    # ... and reported its run to the flow's Prefect API (smoothing runs in the flow's process), not to a server of its own;
    # task runs are recorded from the events the workers send in the background: they may arrive after the flow ends
    completed = Counter({(name, "COMPLETED"): count for name, count in (SUBMITTED_TASKS + Counter({"smooth_window_task": 1})).items()})
    recorded: list[Counter] = []
    try:
        wait_until(lambda: recorded.append(_task_runs_under(report["flow_run_id"])) or recorded[-1] == completed, 60, "every task run recorded")
    except AssertionError:
        assert recorded[-1] == completed  # what the API holds
    for log in worker_logs:
        assert "Starting temporary server" not in log.read_text(), log

    # the same outputs: every array of every corrected and fused OME-Zarr, every record's values (timings, paths aside)
    assert_same_outputs(local, on_cluster, "the Dask cluster")
