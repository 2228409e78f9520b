"""The flows' task runner: how many workers the service gives a flow, and the settings served flows read back."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from prefect.task_runners import ThreadPoolTaskRunner

from flows.runners import environment_for, execution_from_environment, make_task_runner, resolved_execution
from flows.service_config import ExecutionConfig, ServiceConfig
from flows.submission import InProcessSubmitter
from isoview_core.config import ProcessingConfig
from isoview_core.acquisition import discover_acquisition
from isoview_core.pipeline import parallel

STACK_BYTES = 48 * 192 * 160 * 2
"""One camera stack of the small acquisition (conftest.SMALL)."""


@pytest.fixture()
def machine(monkeypatch: pytest.MonkeyPatch):
    """Pretend the machine has `cores` cores and `available` bytes of available memory."""

    def pretend(cores: int, available: int) -> None:
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)))
        monkeypatch.setattr(parallel, "available_memory_bytes", lambda: available)

    return pretend


@pytest.mark.parametrize(("cores", "stacks_available", "expected"), [(16, 1000, 16), (16, 7.6, 3), (16, 1, 1), (1, 1000, 1)])
def test_automatic_workers_are_the_cores_bounded_by_two_stacks_each_in_80_percent_of_the_memory(
    machine, small_acquisition: Path, cores: int, stacks_available: float, expected: int
) -> None:
    machine(cores, int(stacks_available * STACK_BYTES))
    resolved = resolved_execution(ExecutionConfig(), discover_acquisition(small_acquisition))
    assert resolved.max_workers == expected  # 7.6 stacks: 0.8 * 7.6 / 2 = 3.04 workers
    assert isinstance(make_task_runner(resolved), ThreadPoolTaskRunner) and make_task_runner(resolved)._max_workers == expected


def test_a_worker_count_set_by_the_user_is_kept(machine, small_acquisition: Path) -> None:
    machine(16, 1)
    assert resolved_execution(ExecutionConfig(max_workers=5), discover_acquisition(small_acquisition)).max_workers == 5


def test_served_flows_read_back_the_workers_or_their_absence(monkeypatch: pytest.MonkeyPatch) -> None:
    for execution in (ExecutionConfig(), ExecutionConfig(max_workers=3), ExecutionConfig(task_runner="dask", dask_address="tcp://h:8786")):
        monkeypatch.delenv("ISOVIEW_MAX_WORKERS", raising=False)
        for name, value in environment_for(execution).items():
            monkeypatch.setenv(name, value)
        assert execution_from_environment() == execution


def test_the_watcher_s_correction_and_fusion_share_the_automatic_workers(machine, small_acquisition: Path) -> None:
    machine(16, 1000 * STACK_BYTES)
    automatic = InProcessSubmitter(ServiceConfig(processing=ProcessingConfig(acquisition=small_acquisition)))
    assert automatic.workers() is None  # sized at the first job, once the acquisition's stacks are known
    automatic._runnable()
    assert automatic.workers() == 8  # 16 cores, half for the corrections, half for the fusions running beside them
    fixed = InProcessSubmitter(ServiceConfig(processing=ProcessingConfig(acquisition=small_acquisition), execution=ExecutionConfig(max_workers=3)))
    fixed._runnable()
    assert fixed.workers() == 3  # per flow, as configured
