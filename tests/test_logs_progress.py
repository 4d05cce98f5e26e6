"""Long work reports its progress: ingestion in bytes read, a run in rebuild steps, detection in
series, indexing in chunks; each task's count reaches its total, and the results do not depend on
whether anybody listens."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from costlake.anomalies.job import update_anomalies
from costlake.lake.warehouse import Warehouse
from costlake.logs import Progress, current, reporting, watching
from costlake.ops.publish import publish_and_detect
from costlake.pipeline.ingest import ingest_files
from costlake.rag.indexer import build_index
from helpers import query_rows


class Tasks(Progress):
    """Every task started, with the furthest count and the total it reached."""

    def __init__(self) -> None:
        super().__init__()
        self.tasks: list[dict[str, object]] = []

    def start(self, description: str, total: float | None = None, unit: str = "steps") -> None:
        self.tasks.append({"description": description, "unit": unit, "total": total, "done": 0.0})
        super().start(description, total, unit)

    def update(
        self, *, completed: float | None = None, total: float | None = None, description: str | None = None
    ) -> None:
        if not self.tasks:
            return
        if completed is not None:
            self.tasks[-1]["done"] = completed
        if total is not None:
            self.tasks[-1]["total"] = total

    def task(self, prefix: str) -> dict[str, object]:
        [found] = [t for t in self.tasks if str(t["description"]).startswith(prefix)]
        return found


def _bill(days: int = 40) -> list[list[object]]:
    rows: list[list[object]] = []
    for d in range(days):
        day = dt.date(2025, 1, 1) + dt.timedelta(days=d)
        for account in ("111111111111", "222222222222"):
            for service, cost in (("AmazonEC2", 100), ("AmazonS3", 20)):
                spike = 900 if (service == "AmazonEC2" and d == 35 and account[0] == "1") else 0
                rows.append([f"e-{account}-{service}-{d}", day, account, service, cost + spike + d % 7, day])
    return rows


def test_each_long_step_reports_until_its_total(
    make_wh: Callable[..., Warehouse], write_csv: Callable[..., Path]
) -> None:
    wh = make_wh(embedder="hashing")
    path = write_csv("bill.csv", _bill())
    with reporting(Tasks()) as seen:
        ingest_files(wh, [path])
        report = publish_and_detect(wh, seen.start)
        build_index(wh)
    assert report.anomalies is not None and report.anomalies.anomalies >= 1
    reading = seen.task("reading bill.csv")
    assert (reading["unit"], reading["total"]) == ("bytes", float(path.stat().st_size))
    assert seen.task("storing bill.csv as batch b000001-")["total"] is None
    rebuilding = seen.task("rebuilding 40 day(s)")
    # A full load: its days hold every raw row, so the events of those days are not listed first
    # (stage1_normalize.steps, `every_day`): one step fewer than a correction's rebuild.
    assert rebuilding["unit"] == "steps" and rebuilding["done"] == rebuilding["total"] == 15.0
    detecting = seen.task("detecting anomalies")
    assert detecting["unit"] == "series" and detecting["done"] == detecting["total"]
    assert float(str(detecting["total"])) > 4  # 4 series screened, then the ones the screen kept
    embedding = seen.task("embedding")
    assert embedding["unit"] == "chunks" and embedding["done"] == embedding["total"] >= 1
    steps = [t["description"] for t in seen.tasks if t["total"] is None]
    assert steps[1:3] == ["planning", "rebuilding stages 1-3"] and "anomalies" in steps


def test_listening_changes_no_result(
    make_wh: Callable[..., Warehouse], write_csv: Callable[..., Path]
) -> None:
    quiet, heard = make_wh(folder="quiet"), make_wh(folder="heard")
    path = write_csv("bill.csv", _bill())
    ingest_files(quiet, [path])
    publish_and_detect(quiet)
    with reporting(Tasks()):
        ingest_files(heard, [path])
        publish_and_detect(heard)
        update_anomalies(heard, full=True)
    sql = "SELECT * EXCLUDE (run_id, published_at) FROM daily_account_cost ORDER BY ALL"
    assert query_rows(quiet, sql) == query_rows(heard, sql)
    anomalies = (
        "SELECT usage_date, account_id, service_name, kind, impact_usd FROM cost_anomalies ORDER BY ALL"
    )
    assert query_rows(quiet, anomalies) == query_rows(heard, anomalies)


def test_a_watched_query_moves_the_task_forward_only() -> None:
    readings = iter([-1.0, 30.0, 20.0, 80.0, 250.0])
    seen = Tasks()
    with reporting(seen):
        current().start("reading", total=1000, unit="bytes")
        with watching(lambda: next(readings, -1.0), 1000, every=0.01):
            import time

            time.sleep(0.3)
    assert seen.completed == 1000.0  # 30% -> 300, 20% ignored, 80% -> 800, 250% capped at 100%
    assert current() is not seen
