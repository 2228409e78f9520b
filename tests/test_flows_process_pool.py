"""``process_acquisition`` run by a ``prefect worker`` of a process work pool gives the in-process outputs, byte for byte:
pool, deployment (``deployments/prefect.yaml``, renamed) and worker set up with the Prefect CLI as a lab sets them up.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from flow_run_helpers import assert_same_outputs, clean_environment, run_config, stop
from waiting import wait_until

REPOSITORY = Path(__file__).resolve().parents[1]
PREFECT_FILE = REPOSITORY / "deployments" / "prefect.yaml"
PREFECT = str(Path(sys.executable).with_name("prefect"))
CLI_TIMEOUT_S = 120  # a loaded 2-core machine imports Prefect and the flows slowly; only a failing command waits that long
FLOW_TIMEOUT_S = 300
FLOW_NAMES = ("correct-timepoint", "draw-figures", "estimate-timepoint", "fuse-window", "process-acquisition")
"""The flows that ``prefect.yaml`` deploys, one deployment each."""
PULL_STEP = "prefect.deployments.steps.set_working_directory"


def _prefect(*arguments: str, environment: dict[str, str]) -> None:
    """Run a ``prefect`` command from the repository root, as the lab's deployment steps do, and require success."""
    result = subprocess.run([PREFECT, *arguments], cwd=REPOSITORY, env=environment, capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
    assert result.returncode == 0, f"prefect {' '.join(arguments)}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


@pytest.fixture()
def worker_pool(prefect_harness, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen, Path]]:
    """A process work pool of its own on the session's server, and one ``prefect worker`` process polling it.

    The worker is started as on a processing machine: the server's ``PREFECT_API_URL``, a Prefect home of its
    own and no other Prefect or isoview setting (the flow runs get theirs from the deployment's job variables).
    Yields the pool's name, the worker and its log; the worker, and any flow run it started, is ended afterwards,
    also when the test fails.
    """
    from prefect.settings import PREFECT_API_URL

    pool = f"isoview-process-{uuid.uuid4().hex[:8]}"
    machine = tmp_path / "worker"
    machine.mkdir()
    environment = clean_environment(
        PREFECT_API_URL=PREFECT_API_URL.value(),  # this session's server: the lab's `prefect server start`
        PREFECT_HOME=str(machine / "prefect-home"),
    )
    _prefect("work-pool", "create", pool, "--type", "process", environment=environment)
    log = machine / "worker.log"
    with open(log, "w") as output:
        # polling every second instead of every 10 s only saves the test time
        worker = subprocess.Popen(
            [PREFECT, "worker", "start", "--pool", pool, "--limit", "1"],
            cwd=machine, env=environment | {"PREFECT_WORKER_QUERY_SECONDS": "1"}, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        yield pool, worker, log
    finally:
        stop(worker)


def _deploy(pool: str, name: str, tmp_path: Path) -> dict:
    """``prefect deploy --all`` of a copy of ``deployments/prefect.yaml`` on `pool`, its deployments named `name`.

    Returns the copy's job variables, which every deployment must carry.
    """
    from prefect.settings import PREFECT_API_URL

    spec = yaml.safe_load(PREFECT_FILE.read_text())
    pool_spec = spec["definitions"]["work_pool"]  # the anchor every deployment's work_pool refers to
    pool_spec["name"] = pool
    for deployment in spec["deployments"]:
        assert deployment["work_pool"] is pool_spec
        deployment["name"] = name
    prefect_file = tmp_path / "prefect.yaml"
    prefect_file.write_text(yaml.safe_dump(spec, sort_keys=False))
    # ISOVIEW_HOME: the repository path the workers share, written into the deployments' pull step
    environment = clean_environment(
        PREFECT_API_URL=PREFECT_API_URL.value(), PREFECT_HOME=str(tmp_path / "deploy-prefect-home"), ISOVIEW_HOME=str(REPOSITORY)
    )
    _prefect("--no-prompt", "deploy", "--all", "--prefect-file", str(prefect_file), environment=environment)
    return pool_spec["job_variables"]


def test_process_acquisition_on_a_process_pool_worker_gives_the_in_process_outputs(small_acquisition, tmp_path, worker_pool):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import WorkPoolFilter, WorkPoolFilterName
    from prefect.client.schemas.objects import FlowRun
    from prefect.deployments import run_deployment

    from flows.acquisition import process_acquisition

    pool, worker, worker_log = worker_pool
    name = f"isoview-{pool}"
    job_variables = _deploy(pool, name, tmp_path)
    with get_client(sync_client=True) as client:
        deployments = client.read_deployments(work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[pool])))
        flows = sorted(client.read_flow(deployment.flow_id).name for deployment in deployments)
    assert flows == list(FLOW_NAMES) and {deployment.name for deployment in deployments} == {name}
    assert all(deployment.job_variables == job_variables for deployment in deployments)
    assert all(deployment.pull_steps == [{PULL_STEP: {"directory": str(REPOSITORY)}}] for deployment in deployments)
    assert job_variables["env"]["ISOVIEW_TASK_RUNNER"] == "threads"

    # started through the server as `isoview watch --deployment` starts it (flows.submission): the config as JSON
    on_worker = run_config(small_acquisition, tmp_path / "worker-run")
    parameters = {"acquisition": str(small_acquisition), "config": on_worker.model_dump(mode="json")}
    flow_run = run_deployment(f"process-acquisition/{name}", parameters=parameters, timeout=0, as_subflow=False)

    # the reference, while the worker picks the run up: this process, the subflows' default thread pool
    local = run_config(small_acquisition, tmp_path / "in-process")
    assert process_acquisition(small_acquisition, None, local).model_dump() == {"corrected_timepoints": 2, "fused_pairs": 4}

    with get_client(sync_client=True) as client:

        def finished() -> FlowRun | None:
            assert worker.poll() is None, "the worker exited:\n" + worker_log.read_text()[-3000:]
            run = client.read_flow_run(flow_run.id)
            return run if run.state.is_final() else None

        run = wait_until(finished, FLOW_TIMEOUT_S, "the flow run on the worker finish")
        assert run.state.is_completed(), f"{run.state.type.value}: {run.state.message}\n" + worker_log.read_text()[-4000:]
    # run by the worker, in a process of its own
    assert run.work_pool_name == pool and run.infrastructure_pid, run
    assert int(run.infrastructure_pid) not in (os.getpid(), worker.pid)
    assert str(flow_run.id) in worker_log.read_text()

    assert_same_outputs(local, on_worker, "the process pool's worker")
