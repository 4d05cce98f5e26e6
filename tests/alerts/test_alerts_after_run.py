"""Alerts sent by `run` itself (ops/publish.py): a `resolved` event after a correction removes an
anomaly, a day the gate held back, a run that failed, none of them changing the run's outcome."""

from __future__ import annotations

import datetime as dt
import fcntl
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from costlake.alerts.manage import add_alert
from costlake.alerts.send import send_alerts
from costlake.lake.api_keys import store_path
from costlake.lake.lock import LOCK_FILE, LockTimeout
from costlake.lake.warehouse import Warehouse
from costlake.ops.publish import publish_and_detect
from costlake.pipeline.ingest import ingest_files
from costlake.pipeline.tenants import load_tenants
from helpers import ingest_and_run
from two_tenants import A1, B1, START, build_lake, write_bill
from webhook_receiver import Receiver, receiver, verify

FAST = {"alert_backoff_seconds": 0.01, "alert_backoff_max_seconds": 0.02}
SPIKE_DAY = START + dt.timedelta(days=30)  # team-b's AmazonRDS spike


@pytest.fixture(scope="module")
def hook() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Warehouse, Path]:
    folder = tmp_path_factory.mktemp("alerts_after_run")
    lake = build_lake(folder)
    return Warehouse(lake.settings.model_copy(update=FAST)), folder


def _row(part: str, cost: str, effective: str, ingested: str) -> list[str]:
    day = SPIKE_DAY.isoformat()
    return [
        f"{B1}-AmazonRDS-30-{part}",
        day,
        B1,
        "AmazonRDS",
        cost,
        effective,
        "eu-west-1",
        "savings_plan",
        ingested,
    ]


def test_a_correction_that_removes_an_anomaly_sends_resolved(
    built: tuple[Warehouse, Path], hook: Receiver
) -> None:
    wh, folder = built
    with sqlite3.connect(store_path(wh.settings, wh.root)) as con:  # runs without alerts: one look, no table
        assert con.execute("SELECT 1 FROM sqlite_master WHERE name = 'costlake_alerts'").fetchone() is None
    alert, secret = add_alert(wh, "team-b", hook.url, include_existing=True)
    _, report = ingest_and_run(wh)  # nothing new: the run still sends what is due
    assert report.alerts is not None and report.alerts.alerts[0].delivered == 1
    detected = hook.received[0].event
    assert detected["type"] == "anomaly.detected" and detected["data"]["usage_date"] == SPIKE_DAY.isoformat()
    fix = write_bill(folder / "fix.csv", [_row("a", "93.750", "93.625", "2025-03-01"),
                                          _row("b", "56.250", "56.125", "2025-03-01")])  # fmt: skip
    _, corrected = ingest_and_run(wh, fix)
    assert corrected.anomalies is not None and corrected.anomalies.removed == 1
    assert [g.event["type"] for g in hook.received] == ["anomaly.detected", "anomaly.resolved"]
    resolved = hook.received[1]
    assert verify(secret, resolved) and resolved.id != hook.received[0].id
    assert {k: resolved.event["data"][k] for k in ("account_id", "service", "usage_date", "kind")} == {
        k: detected["data"][k] for k in ("account_id", "service", "usage_date", "kind")
    }
    publish_and_detect(wh)
    assert len(hook.received) == 2  # resolved once


def test_a_held_back_day_and_a_failed_run_are_operations_events(
    built: tuple[Warehouse, Path], hook: Receiver
) -> None:
    wh, folder = built
    hook.clear()
    gated = Warehouse(
        wh.settings.model_copy(update={"negative_daily_total": "error", "lock_timeout_seconds": 0.2})
    )
    add_alert(gated, "team-a", hook.url, events=["operations"])
    bad = write_bill(folder / "bad.csv", [[f"neg-{B1}", "2025-02-01", B1, "AmazonRDS", "-5000", "-5000",
                                          "eu-west-1", "savings_plan", "2025-03-02"]])  # fmt: skip
    ingest_files(gated, [bad])
    held = publish_and_detect(gated)
    assert held.held_back == [dt.date(2025, 2, 1)]
    ops = [g.event for g in hook.received if g.event["type"].startswith("operations.")]
    assert [(e["type"], e["data"]["days"]) for e in ops] == [("operations.day_held_back", ["2025-02-01"])]
    assert (
        ops[0]["tenant"] == "team-a" and B1 not in hook.received[-1].body.decode()
    )  # no other tenant's data
    with open(wh.root / LOCK_FILE, "a+") as other:  # another writer holds the lock: this run fails
        fcntl.flock(other.fileno(), fcntl.LOCK_EX)
        with pytest.raises(LockTimeout):  # the run's own error, unchanged
            publish_and_detect(gated)
    failed = [g.event for g in hook.received if g.event["type"] == "operations.run_failed"]
    assert len(failed) == 1 and failed[0]["data"]["error"] == "LockTimeout"


def test_moving_an_account_to_another_tenant_sends_neither_tenant_anything(
    tmp_path: Path, hook: Receiver
) -> None:
    wh = Warehouse(build_lake(tmp_path).settings.model_copy(update=FAST))
    hook.clear()
    alert_a, _ = add_alert(wh, "team-a", hook.url, include_existing=True)
    alert_b, _ = add_alert(wh, "team-b", hook.url)  # baseline: B1's spike
    send_alerts(wh)
    assert [(g.event["alert_id"], g.event["type"]) for g in hook.received] == [
        (alert_a.alert_id, "anomaly.detected")
    ]  # A1's spike of Feb 3
    (tmp_path / "moved.csv").write_text(f"account_id,tenant_id,account_name\n{A1},team-b,moved\n")
    load_tenants(wh, tmp_path / "moved.csv")  # `costlake tenants load`: A1 is team-b's now
    send_alerts(wh)
    send_alerts(wh)
    assert len(hook.received) == 1  # A is not told "resolved"; B does not get A1's old spike as new
    with sqlite3.connect(store_path(wh.settings, wh.root)) as con:
        states = con.execute(
            "SELECT event, state FROM costlake_alert_deliveries WHERE alert_id = ? ORDER BY event",
            (alert_a.alert_id,),
        ).fetchall()
    assert states == [("anomaly.detected", "delivered"), ("anomaly.resolved", "moved")]
