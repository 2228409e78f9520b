"""How the watcher hands work to Prefect: every flow run of the service carries its acquisition's tag, and every
deployment it submits to accepts what it sends."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

from flows.problems import publish_problems
from flows.service_config import ServiceConfig
from flows.submission import FLOW_NAMES, DeploymentSubmitter, InProcessSubmitter, acquisition_tag
from isoview_core.config import ProcessingConfig


def _runs_tagged(tag: str) -> list[str]:
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[tag])))
    return sorted(run.name for run in runs)


def test_flow_runs_are_tagged_with_their_acquisition_so_the_ui_lists_one_acquisition(prefect_harness, small_acquisition, tmp_path):
    acquisition = tmp_path / "larva-tagged"  # a name no other test's runs carry in the session's Prefect database
    shutil.copytree(small_acquisition, acquisition)
    config = ServiceConfig(processing=ProcessingConfig(acquisition=acquisition, timepoints=[0], save_diagnostics=False))
    tag = acquisition_tag(config.processing.acquisition)
    assert tag == "acquisition:larva-tagged"
    InProcessSubmitter(config).correct(0, 0)
    assert _runs_tagged(tag) == ["correct SPM00 TM000000"]
    publish_problems(config.processing)  # the service's own reports carry the tag too
    assert _runs_tagged(tag) == ["correct SPM00 TM000000", "problems of larva-tagged"]
    assert _runs_tagged("acquisition:some-other-acquisition") == []


def test_each_deployment_the_watcher_submits_to_accepts_the_parameters_it_sends(monkeypatch, tmp_path):
    import prefect.deployments

    from flows.correction import correct_timepoint
    from flows.fusion import draw_figures, estimate_timepoint, fuse_window

    sent: dict[str, dict] = {}

    def run_deployment(name: str, parameters: dict, **options: object) -> SimpleNamespace:
        sent[name] = parameters
        return SimpleNamespace(state=SimpleNamespace(is_completed=lambda: True))

    monkeypatch.setattr(prefect.deployments, "run_deployment", run_deployment)
    config = ServiceConfig(processing=ProcessingConfig(acquisition=tmp_path / "acquisition"), execution={"deployment": "isoview"})
    submitter = DeploymentSubmitter(config, "isoview")
    submitter.correct(0, 3)
    submitter.estimate(0, 3)
    submitter.fuse(0, [3, 4], acquisition_finished=False)
    submitter.draw(0, [3, 4])

    flows = {flow.name: flow for flow in (correct_timepoint, estimate_timepoint, fuse_window, draw_figures)}
    assert sorted(sent) == sorted(f"{FLOW_NAMES[kind]}/isoview" for kind in ("correct", "estimate", "fuse", "draw"))
    for name, parameters in sent.items():
        flows[name.split("/")[0]].validate_parameters(parameters)  # raises on a parameter the flow does not take or lacks
