"""The problems the watcher met, shown in the Prefect UI: a short ``report-problems`` flow run per
new problem, whose table artifact ``isoview-problems`` lists the latest ones."""

from __future__ import annotations

import logging
import time

from prefect import flow, tags
from prefect.artifacts import create_table_artifact

from flows.submission import acquisition_tag
from isoview_core.config import ProcessingConfig
from isoview_core.service.journal import read_problems

logger = logging.getLogger(__name__)

SHOWN = 100
"""Most recent problems listed in the UI (all of them stay in ``service/problems.jsonl``)."""


@flow(name="report-problems", flow_run_name="problems of {config.acquisition.name}")
def report_problems(config: ProcessingConfig) -> int:
    """Replace the UI's problem table with the latest problems (newest first); returns how many are listed."""
    problems = read_problems(config)[-SHOWN:]
    rows = [
        {
            "time": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry["time"])),
            "specimen": entry["specimen"],
            "timepoints": ", ".join(str(t) for t in entry["timepoints"]),
            "problem": entry["message"],
        }
        for entry in reversed(problems)
    ]
    create_table_artifact(rows, key="isoview-problems", description=f"Problems of {config.acquisition}, newest first")
    return len(rows)


def publish_problems(config: ProcessingConfig) -> None:
    """Show the problems in the UI; a UI that cannot be reached is only logged (the list stays on disk)."""
    try:
        with tags(acquisition_tag(config.acquisition)):
            report_problems(config)
    except Exception as error:  # noqa: BLE001 - the UI is a view: its outage must not stop the service
        logger.warning("could not publish the problem list to Prefect: %s", error)
