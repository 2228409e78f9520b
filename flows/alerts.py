"""The quality alerts the service raised, shown in the Prefect UI and sent on: a short ``report-alerts`` flow run per
batch of new alerts, whose table artifact ``isoview-alerts`` lists the latest ones, and, when ``watch.alert_block``
names one, a Prefect notification block (Slack, Microsoft Teams, a custom webhook...) that receives each batch.

Without a block, a Prefect automation does the same: trigger on a ``report-alerts`` flow run entering Completed,
action "Send a notification" with any notification block (README, "Alerts").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from prefect import flow, tags
from prefect.artifacts import create_table_artifact
from prefect.blocks.abstract import NotificationBlock
from prefect.blocks.core import Block

from flows.submission import acquisition_tag
from isoview_core.config import ProcessingConfig
from isoview_core.errors import IsoviewError
from isoview_core.quality.alerts import QualityAlert, read_alerts

logger = logging.getLogger(__name__)

ALERTS_ARTIFACT_KEY = "isoview-alerts"
SHOWN = 100
"""Most recent alerts listed in the UI (all of them stay in ``service/alerts.jsonl``)."""


@flow(name="report-alerts", flow_run_name="alerts of {config.acquisition.name}")
def report_alerts(config: ProcessingConfig) -> int:
    """Replace the UI's alert table with the latest alerts (newest first); returns how many are listed."""
    alerts = read_alerts(config.resolved_fused_dir())[-SHOWN:]
    rows = [
        {
            "raised": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(alert.time)),
            "timepoint": alert.timepoint,
            "channel": alert.channel,
            "cameras": "/".join(str(camera) for camera in alert.cameras),
            "kind": alert.kind,
            "alert": alert.message,
        }
        for alert in reversed(alerts)
    ]
    create_table_artifact(rows, key=ALERTS_ARTIFACT_KEY, description=f"Quality alerts of {config.acquisition}, newest first")
    return len(rows)


def notify_alerts(block: str, alerts: Sequence[QualityAlert], config: ProcessingConfig) -> None:
    """Send alerts through a Prefect notification block, one message for all of them.

    Parameters
    ----------
    block : str
        The block, as ``block-type/name`` (``slack-webhook/lab``).
    alerts : sequence of QualityAlert
        The new alerts; their messages are the body, one per line.
    config : ProcessingConfig
        Names the acquisition in the subject.

    Raises
    ------
    IsoviewError
        The block is not a notification block.
    """
    notifier = Block.load(block)
    if not isinstance(notifier, NotificationBlock):
        raise IsoviewError(f"watch.alert_block {block}: a {type(notifier).__name__} block cannot send notifications")
    subject = f"isoview: {len(alerts)} quality alert{'s' if len(alerts) > 1 else ''} in {config.acquisition.name}"
    with notifier.raise_on_failure():  # a webhook that fails says so (logged by the caller) instead of passing silently
        notifier.notify("\n".join(alert.message for alert in alerts), subject=subject)


def publish_alerts(config: ProcessingConfig, alerts: Sequence[QualityAlert], *, alert_block: str | None = None) -> None:
    """Show new alerts in the UI and send them to `alert_block`; an outage of either is only logged (the alerts stay on disk).

    Parameters
    ----------
    config : ProcessingConfig
        Where the alerts are recorded.
    alerts : sequence of QualityAlert
        The alerts just raised; nothing is published without one.
    alert_block : str, optional
        A Prefect notification block, ``block-type/name`` (``watch.alert_block``).
    """
    if not alerts:
        return
    try:
        with tags(acquisition_tag(config.acquisition)):
            report_alerts(config)
    except Exception as error:  # noqa: BLE001 - the UI is a view: its outage must not stop the service
        logger.warning("could not publish the quality alerts to Prefect: %s", error)
    if alert_block is None:
        return
    try:
        notify_alerts(alert_block, alerts, config)
    except Exception as error:  # noqa: BLE001 - neither may a notifier's
        logger.warning("could not send %d quality alert(s) through %s: %s", len(alerts), alert_block, error)
