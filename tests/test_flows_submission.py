"""How the watcher hands work to Prefect: every flow run of the service carries its acquisition's tag."""

from __future__ import annotations

import shutil

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

from flows.problems import publish_problems
from flows.service_config import ServiceConfig
from flows.submission import InProcessSubmitter, acquisition_tag
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
