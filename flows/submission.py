"""How the watcher hands work to Prefect: flows run in this process (embedded default), or flow runs
of the deployments served by ``isoview serve`` on a Prefect server and its workers."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from flows.service_config import ServiceConfig
from isoview_core.errors import IsoviewError

logger = logging.getLogger(__name__)

FLOW_NAMES = {
    "correct": "correct-timepoint",
    "estimate": "estimate-timepoint",
    "fuse": "fuse-window",
    "draw": "draw-figures",
    "process": "process-acquisition",
}


def acquisition_tag(acquisition: Path) -> str:
    """``acquisition:<name>``: the tag of every flow run of one acquisition, to filter its runs in the UI."""
    return f"acquisition:{Path(acquisition).name}"


class ServerUnavailable(IsoviewError):
    """The Prefect server cannot be reached: keep the work queued and try again later."""


class Submitter(Protocol):
    """Runs one timepoint's correction, the estimates of one timepoint, one set of fusions or the drawing of their
    figures to the end; raises with the reason on failure.

    The watcher calls them from three threads at once (its correction, fusion and figure lanes; ``estimate`` runs in
    the fusion lane). ``fuse`` leaves the diagnostic figures to ``draw``. A submitter may also have a ``start()``
    method: the watcher calls it once, before its lanes start (see :meth:`InProcessSubmitter.start`).
    """

    def correct(self, specimen: int, timepoint: int) -> None: ...

    def estimate(self, specimen: int, timepoint: int) -> None: ...

    def fuse(self, specimen: int, timepoints: list[int], *, acquisition_finished: bool) -> None: ...

    def draw(self, specimen: int, timepoints: list[int]) -> None: ...


_LOCAL_SERVER_LOCK = threading.Lock()


def start_local_prefect_server() -> None:
    """Start Prefect's temporary local server now when no API is configured (``PREFECT_API_URL`` unset); once per process.

    Prefect starts it itself at the first use of the API, but Prefect 3.8's ``SubprocessASGIServer.start`` is not
    thread-safe: threads whose first flow runs start together (the watcher's two lanes, as a resumed watcher catches up)
    each start a server on the same database, each overwrites the one process handle, and a server whose handle was
    overwritten is never stopped: it outlives the watcher, holding its stdout and stderr, so whoever reads them to the
    end (a pipe, ``tee``, a test) waits for ever; or a thread finds the handle empty ("Server process did not start").
    Started here under a lock, every later use finds it running and healthy.
    """
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

    if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        return  # a server of its own (or none allowed: Prefect says so at the first flow)
    from prefect.server.api.server import SubprocessASGIServer

    with _LOCAL_SERVER_LOCK:
        SubprocessASGIServer().start()  # a no-op once it runs


class InProcessSubmitter:
    """Calls the flows directly: Prefect's embedded server (or the configured API) records the runs.

    Safe to call from several threads at once: each call is a flow run of its own.
    """

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self._flows: tuple[Any, ...] | None = None
        self._workers = config.execution.max_workers
        self._lock = threading.Lock()

    def start(self) -> None:
        """Before the watcher's lanes run flows side by side: Prefect's temporary server, when it is the one used."""
        start_local_prefect_server()

    def _runnable(self) -> tuple[Any, ...]:
        """The watcher's flows (correct, fuse, draw, estimate) with the task runner, sized at the first job (the
        acquisition's stacks exist by then)."""
        with self._lock:  # the first correction and the first fusion may ask at once
            if self._flows is None:
                self._flows = self._flows_with_task_runner()
        return self._flows

    def _flows_with_task_runner(self) -> tuple[Any, ...]:
        from flows.correction import correct_timepoint
        from flows.fusion import draw_figures, estimate_timepoint, fuse_window
        from flows.runners import make_task_runner, resolved_execution
        from isoview_core.acquisition import discover_acquisition

        processing = self.config.processing
        execution = resolved_execution(self.config.execution, discover_acquisition(processing.acquisition, processing.layout))
        if self.config.execution.max_workers is None:  # the watcher runs a correction and a fusion at once: they share
            execution = execution.model_copy(update={"max_workers": max(1, execution.max_workers // 2)})
        self._workers = execution.max_workers
        logger.info("%s: %d workers per flow", processing.acquisition, self._workers)
        # one runner for the flows is only their template: Prefect's flow engine runs each flow run on a copy of
        # it (`task_runner.duplicate()`), so a correction and a fusion running at once have a pool each
        runner = make_task_runner(execution)
        return tuple(flow.with_options(task_runner=runner) for flow in (correct_timepoint, fuse_window, draw_figures, estimate_timepoint))

    def workers(self) -> int | None:
        """Workers per flow: as configured, or as resolved at the first job (None before it when automatic)."""
        return self._workers

    def correct(self, specimen: int, timepoint: int) -> None:
        self._run(0, specimen, timepoint)

    def fuse(self, specimen: int, timepoints: list[int], *, acquisition_finished: bool) -> None:
        self._run(1, specimen, timepoints, acquisition_finished=acquisition_finished, draw_figures=False)

    def draw(self, specimen: int, timepoints: list[int]) -> None:
        self._run(2, specimen, timepoints)

    def estimate(self, specimen: int, timepoint: int) -> None:
        self._run(3, specimen, timepoint)

    def _run(self, flow: int, specimen: int, selection: int | list[int], **options: bool) -> None:
        """Run flow number `flow` of :meth:`_runnable` on the acquisition, tagged with it."""
        from prefect import tags

        processing = self.config.processing
        start_local_prefect_server()  # also when DeploymentSubmitter falls back to this process, from any lane
        with tags(acquisition_tag(processing.acquisition)):
            self._runnable()[flow](processing.acquisition, specimen, selection, processing, **options)


class DeploymentSubmitter:
    """Creates flow runs of the served deployments and waits for them (workers do the work)."""

    def __init__(self, config: ServiceConfig, deployment: str) -> None:
        self.config = config
        self.deployment = deployment
        self._fallback = InProcessSubmitter(config) if config.execution.fallback_in_process else None

    def correct(self, specimen: int, timepoint: int) -> None:
        self._run("correct", self._parameters(specimen, timepoint=timepoint), lambda fallback: fallback.correct(specimen, timepoint))

    def estimate(self, specimen: int, timepoint: int) -> None:
        self._run("estimate", self._parameters(specimen, timepoint=timepoint), lambda fallback: fallback.estimate(specimen, timepoint))

    def fuse(self, specimen: int, timepoints: list[int], *, acquisition_finished: bool) -> None:
        parameters = self._parameters(specimen, timepoints=timepoints, acquisition_finished=acquisition_finished, draw_figures=False)
        self._run("fuse", parameters, lambda fallback: fallback.fuse(specimen, timepoints, acquisition_finished=acquisition_finished))

    def draw(self, specimen: int, timepoints: list[int]) -> None:
        self._run("draw", self._parameters(specimen, timepoints=timepoints), lambda fallback: fallback.draw(specimen, timepoints))

    def _parameters(self, specimen: int, **selection: object) -> dict:
        """A flow run's parameters: the acquisition, the specimen, what to process and the config as JSON."""
        processing = self.config.processing
        return {"acquisition": str(processing.acquisition), "specimen": specimen, **selection, "config": processing.model_dump(mode="json")}

    def _run(self, kind: str, parameters: dict, fallback: Callable[[InProcessSubmitter], None]) -> None:
        import httpx
        from prefect.deployments import run_deployment
        from prefect.exceptions import ObjectNotFound

        name = f"{FLOW_NAMES[kind]}/{self.deployment}"
        try:
            flow_run = run_deployment(name, parameters=parameters, timeout=None, as_subflow=False, tags=[acquisition_tag(self.config.processing.acquisition)])
        except ObjectNotFound as error:
            raise IsoviewError(f"{name}: no such deployment on the Prefect server (start `isoview serve --name {self.deployment}`)") from error
        except (httpx.TransportError, OSError) as error:
            if self._fallback is None:
                raise ServerUnavailable(f"{name}: cannot reach the Prefect server ({error})") from error
            logger.warning("Prefect server unavailable (%s): running %s in this process, embedded", error, name)
            with _embedded_prefect():
                fallback(self._fallback)
            return
        if not flow_run.state or not flow_run.state.is_completed():
            message = flow_run.state.message if flow_run.state else "no final state"
            raise IsoviewError(f"{name} run {flow_run.name}: {message}")


@contextmanager
def _embedded_prefect() -> Iterator[None]:
    """Run flows on Prefect's embedded server (its local database) while the configured one is down."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: None}):
        yield


def make_submitter(config: ServiceConfig) -> Submitter:
    """In-process unless the config names a deployment."""
    if config.execution.deployment:
        return DeploymentSubmitter(config, config.execution.deployment)
    return InProcessSubmitter(config)
