"""`costlake run` / `backfill`: publish the new days, bring the anomalies up to date, then alert.

The pipeline knows nothing of detection and detection nothing of the pipeline; this is the one
place that runs them in order, under one hold of the warehouse's write lock. The alerts go out after
the lock is released (a slow receiver must not hold up other writers), and never change the run's
outcome: a failed delivery is logged and sent again by the next run or `costlake alerts send`.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

from costlake.alerts.events import Operations
from costlake.alerts.send import SendReport, send_alerts
from costlake.anomalies.job import AnomalyReport, update_anomalies
from costlake.errors import first_line
from costlake.lake.warehouse import Warehouse
from costlake.pipeline.run import STEPS as PIPELINE_STEPS
from costlake.pipeline.run import RunReport, run_pipeline
from costlake.tables import DAILY_ACCOUNT

STEPS = (*PIPELINE_STEPS, "anomalies")
log = logging.getLogger(__name__)


@dataclass
class PublishReport(RunReport):
    """A run's report plus what detection made of it (None when detection did not run)."""

    anomalies: AnomalyReport | None = None
    alerts: SendReport | None = None  # None when sending failed as a whole (logged)


def publish_and_detect(
    wh: Warehouse,
    step: Callable[[str], None] | None = None,
    *,
    backfill: tuple[dt.date, dt.date] | None = None,
    stages: Collection[str] | None = None,
) -> PublishReport:
    """Run the pipeline, then detection when `anomalies_on_run` is on and stage 3 was published.

    Detection follows the published data: a no-op when it already reflects the latest run. Then the
    alerts: new and resolved anomalies, days held back, stale data; a run that raises tells the alerts
    that asked for operations events, then raises as it would have."""
    try:
        report = _publish_and_detect(wh, step, backfill=backfill, stages=stages)
    except Exception as exc:
        # The run's own error is the line that matters: an alert it could not send is said at info.
        _alert(wh, Operations(failed=type(exc).__name__), level=logging.INFO)
        raise
    report.alerts = _alert(wh, Operations(run_id=report.run_id, held_back=tuple(report.held_back)))
    return report


def _alert(wh: Warehouse, run: Operations, level: int = logging.WARNING) -> SendReport | None:
    try:
        return send_alerts(wh, run)
    except Exception as exc:  # noqa: BLE001 - alerts never fail a run; the next send catches up
        log.log(level, "alerts: not sent (%s: %s); the next run or `costlake alerts send` tries again",
                type(exc).__name__, first_line(exc)[:200])  # fmt: skip
        return None


def _publish_and_detect(
    wh: Warehouse,
    step: Callable[[str], None] | None,
    *,
    backfill: tuple[dt.date, dt.date] | None,
    stages: Collection[str] | None,
) -> PublishReport:
    started = time.monotonic()
    say = step or (lambda _: None)
    with wh.writer("backfill" if backfill is not None else "run"):
        report = PublishReport(**vars(run_pipeline(wh, say, backfill=backfill, stages=stages)))
        if wh.settings.anomalies_on_run and (stages is None or DAILY_ACCOUNT.name in stages):
            say(STEPS[-1])
            report.anomalies = update_anomalies(wh, force=False, by_run=True)
    report.seconds = time.monotonic() - started
    return report
