"""`costlake run` / `backfill`: publish the new days, then bring the anomalies up to date.

The pipeline knows nothing of detection and detection nothing of the pipeline; this is the one
place that runs them in order, under one hold of the warehouse's write lock.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

from costlake.anomalies.job import AnomalyReport, update_anomalies
from costlake.lake.warehouse import Warehouse
from costlake.pipeline.run import STEPS as PIPELINE_STEPS
from costlake.pipeline.run import RunReport, run_pipeline
from costlake.tables import DAILY_ACCOUNT

STEPS = (*PIPELINE_STEPS, "anomalies")


@dataclass
class PublishReport(RunReport):
    """A run's report plus what detection made of it (None when detection did not run)."""

    anomalies: AnomalyReport | None = None


def publish_and_detect(
    wh: Warehouse,
    step: Callable[[str], None] | None = None,
    *,
    backfill: tuple[dt.date, dt.date] | None = None,
    stages: Collection[str] | None = None,
) -> PublishReport:
    """Run the pipeline, then detection when `anomalies_on_run` is on and stage 3 was published.

    Detection follows the published data: a no-op when it already reflects the latest run."""
    started = time.monotonic()
    say = step or (lambda _: None)
    with wh.writer("run"):
        report = PublishReport(**vars(run_pipeline(wh, say, backfill=backfill, stages=stages)))
        if wh.settings.anomalies_on_run and (stages is None or DAILY_ACCOUNT.name in stages):
            say(STEPS[-1])
            report.anomalies = update_anomalies(wh, force=False)
    report.seconds = time.monotonic() - started
    return report
