"""Deliveries to a real local receiver, over the two-tenant lake: tenant, thresholds, once per
anomaly, retries, 4xx, 410, timeouts, operations events, and no secret in the logs."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sqlite3
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from costlake.alerts.events import Due, Operations, detected
from costlake.alerts.manage import add_alert, open_store, remove_alert, secret_file
from costlake.alerts.payload import DETECTED
from costlake.alerts.send import log_due, send_alerts, tenant_data
from costlake.lake.api_keys import store_path
from costlake.lake.warehouse import Warehouse
from two_tenants import A1, A2, B1
from webhook_receiver import Receiver, receiver, verify

FAST = {"alert_backoff_seconds": 0.01, "alert_backoff_max_seconds": 0.02, "alert_timeout_seconds": 2.0}


@pytest.fixture(scope="module")
def hook() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


@pytest.fixture
def fast(lake: Warehouse, hook: Receiver) -> Iterator[Warehouse]:
    """The lake with short retry delays; every alert a test adds is removed after it."""
    hook.clear()
    wh = Warehouse(lake.settings.model_copy(update=FAST))
    yield wh
    store = open_store(wh)
    for alert in store.alerts():
        remove_alert(wh, alert.alert_id)
    store.close()


def _add(wh: Warehouse, hook: Receiver, tenant: str = "team-a", **options: Any) -> tuple[str, str]:
    alert, secret = add_alert(wh, tenant, hook.url, **({"include_existing": True} | options))
    return alert.alert_id, secret


def _states(wh: Warehouse, alert_id: str) -> list[tuple[str, str, int]]:
    with sqlite3.connect(store_path(wh.settings, wh.root)) as con:
        rows = con.execute(
            "SELECT event, state, attempts FROM costlake_alert_deliveries WHERE alert_id = ? ORDER BY event",
            (alert_id,),
        )
        return [tuple(r) for r in rows]


def test_only_the_alerts_tenant_signed_once_per_anomaly(fast: Warehouse, hook: Receiver) -> None:
    alert_a, secret_a = _add(fast, hook, "team-a")
    alert_b, secret_b = _add(fast, hook, "team-b")
    report = send_alerts(fast)
    assert sorted((r.alert_id, r.delivered, r.failed) for r in report.alerts) == sorted(
        [(alert_a, 1, 0), (alert_b, 1, 0)]
    )
    by_alert = {g.event["alert_id"]: g for g in hook.received}
    assert by_alert[alert_a].event["data"]["account_id"] in (A1, A2)
    assert by_alert[alert_b].event["data"]["account_id"] == B1
    assert verify(secret_a, by_alert[alert_a]) and not verify(secret_b, by_alert[alert_a])
    assert verify(secret_b, by_alert[alert_b])
    first = {g.id for g in hook.received}
    send_alerts(fast)
    send_alerts(fast)
    assert len(hook.received) == 2 and {g.id for g in hook.received} == first  # reruns send nothing new


def test_a_new_alert_sends_only_anomalies_found_after_it(fast: Warehouse, hook: Receiver) -> None:
    alert_id, _ = _add(fast, hook, include_existing=False)
    assert send_alerts(fast).alerts[0].delivered == 0 and hook.received == []
    # The spike is the baseline; both of team-a's accounts are marked seen.
    assert _states(fast, alert_id) == [("account.seen", "baseline", 0)] * 2 + [
        ("anomaly.detected", "baseline", 0)
    ]


THRESHOLDS = [
    ({"min_impact": 1198}, 0),
    ({"min_impact": 1197}, 1),
    ({"min_pct": 396}, 0),
    ({"min_pct": 395, "min_impact": 1}, 1),
]


@pytest.mark.parametrize(("options", "sent"), THRESHOLDS)
def test_thresholds_hold(fast: Warehouse, hook: Receiver, options: dict[str, int], sent: int) -> None:
    _add(fast, hook, **{k: Decimal(v) for k, v in options.items()})  # team-a's spike: $1,197.50, 395.87 %
    assert send_alerts(fast).alerts[0].delivered == sent and len(hook.received) == sent


def test_a_500_then_200_is_retried_and_delivered_once(fast: Warehouse, hook: Receiver) -> None:
    alert_id, secret = _add(fast, hook)
    hook.answer(500, 503)
    result = send_alerts(fast).alerts[0]
    assert (result.delivered, result.failed) == (1, 0)
    assert len(hook.received) == 3 and len({g.id for g in hook.received}) == 1
    assert all(verify(secret, g) for g in hook.received)
    assert _states(fast, alert_id) == [("anomaly.detected", "delivered", 3)]
    send_alerts(fast)
    assert len(hook.received) == 3


def test_a_timeout_is_retried(fast: Warehouse, hook: Receiver) -> None:
    slow = Warehouse(fast.settings.model_copy(update={"alert_timeout_seconds": 0.3}))
    alert_id, _ = _add(slow, hook)
    hook.answer(200, delay=1.0)  # answered too late: a timeout
    assert send_alerts(slow).alerts[0].delivered == 1
    assert len(hook.received) == 2 and _states(slow, alert_id) == [("anomaly.detected", "delivered", 2)]


def test_failures_wait_for_the_next_send_under_the_same_id(fast: Warehouse, hook: Receiver) -> None:
    alert_id, _ = _add(fast, hook)
    hook.answer(502, 502, 502)
    result = send_alerts(fast).alerts[0]
    assert (result.delivered, result.failed, result.left) == (0, 1, 1)
    assert _states(fast, alert_id) == [("anomaly.detected", "failed", 3)]
    assert send_alerts(fast).alerts[0].delivered == 1
    assert len(hook.received) == 4 and len({g.id for g in hook.received}) == 1


def test_a_4xx_is_logged_and_never_retried(
    fast: Warehouse, hook: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    alert_id, secret = _add(fast, hook)
    hook.answer(400)
    with caplog.at_level(logging.DEBUG):
        assert send_alerts(fast).alerts[0].rejected == 1
        send_alerts(fast)
    assert len(hook.received) == 1 and _states(fast, alert_id) == [("anomaly.detected", "rejected", 1)]
    assert "HTTP 400" in caplog.text
    signature = hook.received[0].headers["webhook-signature"]
    assert secret not in caplog.text and signature not in caplog.text and secret[6:] not in caplog.text


def test_a_410_disables_the_alert(fast: Warehouse, hook: Receiver) -> None:
    alert_id, _ = _add(fast, hook)
    hook.answer(410)
    assert send_alerts(fast).alerts[0].disabled and len(hook.received) == 1
    store = open_store(fast)
    assert (store.get(alert_id).disabled or "").startswith("410 Gone") and store.alerts(
        active_only=True
    ) == []
    store.close()
    assert send_alerts(fast).alerts == [] and len(hook.received) == 1  # nothing more goes to it
    assert _states(fast, alert_id) == [("anomaly.detected", "gone", 1)]


def test_operations_events_for_a_held_back_day_and_stale_data(fast: Warehouse, hook: Receiver) -> None:
    stale = Warehouse(fast.settings.model_copy(update={"alert_stale_hours": 1e-6}))
    alert_id, secret = _add(stale, hook, "team-b", events=["operations"])
    day = dt.date(2025, 2, 10)
    send_alerts(stale, Operations(run_id="run-1", held_back=(day,)))
    send_alerts(stale, Operations(run_id="run-1", held_back=(day,)))  # the same run told twice: one event
    events = {g.event["type"]: g.event for g in hook.received}
    assert len(hook.received) == 2 and all(verify(secret, g) for g in hook.received)
    assert events["operations.day_held_back"]["data"] == {"run_id": "run-1", "days": ["2025-02-10"]}
    assert events["operations.data_stale"]["data"]["stale_after_hours"] == 1e-6
    assert events["operations.data_stale"]["tenant"] == "team-b"
    assert "anomaly.detected" not in events  # this alert asked for operations events only
    assert secret_file(stale).get(alert_id) == secret


def test_at_most_alert_max_per_send_then_the_rest(fast: Warehouse, hook: Receiver) -> None:
    capped = Warehouse(fast.settings.model_copy(update={"alert_max_per_send": 1, "alert_stale_hours": 1e-6}))
    _add(capped, hook, "team-b", events=["operations"])
    first = send_alerts(capped, Operations(run_id="run-2", held_back=(dt.date(2025, 2, 11),))).alerts[0]
    assert (first.delivered, first.left) == (1, 1) and len(hook.received) == 1
    second = send_alerts(capped).alerts[0]
    assert (second.delivered, second.left) == (1, 0)
    assert sorted(g.event["type"] for g in hook.received) == [
        "operations.data_stale",
        "operations.day_held_back",
    ]


def test_a_trickling_receiver_cannot_hold_a_send(fast: Warehouse, hook: Receiver) -> None:
    quick = Warehouse(fast.settings.model_copy(update={"alert_timeout_seconds": 0.5, "alert_attempts": 1}))
    alert_id, _ = _add(quick, hook)
    hook.misbehave = "trickle"  # every header line within the read timeout: only a deadline stops it
    started = time.monotonic()
    result = send_alerts(quick).alerts[0]
    assert time.monotonic() - started < 3.0
    assert (result.delivered, result.failed, result.left) == (0, 1, 1)
    assert _states(quick, alert_id) == [("anomaly.detected", "failed", 1)]


def test_a_huge_answer_is_not_read(fast: Warehouse, hook: Receiver) -> None:
    alert_id, _ = _add(fast, hook)
    hook.misbehave = "huge"  # 200 and a 50 MB body: 64 KiB of it is read, then the connection closed
    started = time.monotonic()
    assert send_alerts(fast).alerts[0].delivered == 1
    assert time.monotonic() - started < 2.0
    time.sleep(0.2)  # the receiver notices the hang-up
    assert hook.written < 25 * 2**20  # the rest was never read (socket buffers hold a few MB at most)
    assert _states(fast, alert_id) == [("anomaly.detected", "delivered", 1)]


def test_the_send_budget_leaves_the_rest_pending(
    fast: Warehouse, hook: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    spent = Warehouse(fast.settings.model_copy(update={"alert_send_budget_seconds": 1e-9}))
    alert_a, _ = _add(spent, hook, "team-a")
    alert_b, _ = _add(spent, hook, "team-b")
    with caplog.at_level(logging.WARNING):
        report = send_alerts(spent)
    assert [(r.delivered, r.left) for r in report.alerts] == [(0, 1), (0, 1)] and hook.received == []
    assert caplog.text.count("send budget is spent") == 1
    assert sorted(r.delivered for r in send_alerts(fast).alerts) == [1, 1]


def test_no_netrc_credentials_reach_a_receiver(
    fast: Warehouse, hook: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".netrc").write_text("default login u password p\n")
    (tmp_path / ".netrc").chmod(0o600)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(tmp_path / ".netrc"))
    _add(fast, hook)
    assert send_alerts(fast).alerts[0].delivered == 1
    assert "authorization" not in hook.received[0].headers


def test_the_environments_proxy_is_used(
    fast: Warehouse, hook: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP_PROXY / HTTPS_PROXY still route the POST (here the receiver plays the proxy for a host that
    does not resolve)."""
    alert_id, _ = _add(fast, hook)
    secrets = secret_file(fast)
    secrets.put(alert_id, secrets.get(alert_id), "http://alerts.example.invalid/hook")
    monkeypatch.setenv("HTTP_PROXY", hook.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert send_alerts(fast).alerts[0].delivered == 1
    assert hook.received[0].path == "http://alerts.example.invalid/hook"  # the proxy's request line


def test_a_rejected_delivery_stops_the_alert_for_this_send_only(fast: Warehouse, hook: Receiver) -> None:
    stale = Warehouse(fast.settings.model_copy(update={"alert_stale_hours": 1e-6}))
    alert_id, _ = _add(stale, hook, "team-b", events=["operations"])
    hook.answer(400)  # the first of two deliveries is rejected: the second is not thrown away with it
    first = send_alerts(stale, Operations(run_id="run-3", held_back=(dt.date(2025, 2, 12),))).alerts[0]
    assert (first.delivered, first.rejected, first.left) == (0, 1, 1) and len(hook.received) == 1
    second = send_alerts(stale).alerts[0]
    assert (second.delivered, second.rejected, second.left) == (1, 0, 0) and len(hook.received) == 2
    assert sorted(s for _, s, _ in _states(stale, alert_id)) == ["delivered", "rejected"]


def test_an_account_seen_for_the_first_time_is_baseline_then_any_new_anomaly_is_news(
    fast: Warehouse, hook: Receiver
) -> None:
    alert_id, _ = _add(fast, hook, include_existing=False)
    with sqlite3.connect(store_path(fast.settings, fast.root)) as con:  # as if added before any data
        con.execute("DELETE FROM costlake_alert_deliveries WHERE alert_id = ?", (alert_id,))
    # The first sight of the accounts (an alert made before the first run): history, not news.
    assert send_alerts(fast).alerts[0].delivered == 0 and hook.received == []
    assert ("account.seen", "baseline", 0) in _states(fast, alert_id)
    with sqlite3.connect(store_path(fast.settings, fast.root)) as con:  # as if detected only now
        con.execute(
            "DELETE FROM costlake_alert_deliveries WHERE alert_id = ? AND event = 'anomaly.detected'",
            (alert_id,),
        )
    # An anomaly new to the alert on an account it has seen is sent, though its day (Feb 3) is old.
    assert send_alerts(fast).alerts[0].delivered == 1
    assert hook.received[0].event["data"]["usage_date"] == "2025-02-03"


def test_an_anomaly_whose_account_moved_away_is_not_resolved(fast: Warehouse, hook: Receiver) -> None:
    alert_id, _ = _add(fast, hook, "team-b", include_existing=False)
    store = open_store(fast)
    alert = store.get(alert_id)
    theirs = detected(alert, tenant_data(fast, "team-a"), {})  # A1's spike, as if A1 had been team-b's
    gone = {"account_id": B1, "service": "AmazonRDS", "usage_date": "2025-01-02", "kind": "spike"}
    subject = json.dumps(gone, sort_keys=True)
    log_due(store, alert, [*theirs, Due(f"msg_gone_{alert_id}", DETECTED, subject, gone)], "delivered")
    store.close()
    assert send_alerts(fast).alerts[0].delivered == 1  # only the anomaly gone from every tenant
    assert [g.event["type"] for g in hook.received] == ["anomaly.resolved"]
    assert hook.received[0].event["data"]["usage_date"] == "2025-01-02"
    states = _states(fast, alert_id)
    assert ("anomaly.resolved", "moved", 0) in states and ("anomaly.resolved", "delivered", 1) in states
    send_alerts(fast)
    assert len(hook.received) == 1  # the moved one is never told, later or again


def test_a_waiting_delivery_whose_account_moved_away_is_not_sent(fast: Warehouse, hook: Receiver) -> None:
    # Logged `pending` while A1 was team-b's (its endpoint was down, say); A1 is team-a's by the send.
    alert_id, _ = _add(fast, hook, "team-b", include_existing=False)
    store = open_store(fast)
    theirs = detected(store.get(alert_id), tenant_data(fast, "team-a"), {})
    assert theirs and {d.data["account_id"] for d in theirs} <= {A1, A2}
    log_due(store, store.get(alert_id), theirs)
    store.close()
    result = send_alerts(fast).alerts[0]
    assert (result.delivered, result.left) == (0, 0) and hook.received == []
    states = [s for s in _states(fast, alert_id) if s[0] == DETECTED]
    assert states.count((DETECTED, "moved", 0)) == len(theirs)
    assert {state for _, state, _ in states} == {"moved", "baseline"}  # team-b's own: its baseline
    send_alerts(fast)
    assert hook.received == []  # never sent, later or again


def test_a_waiting_delivery_of_a_tenant_left_without_accounts_is_not_sent(
    fast: Warehouse, hook: Receiver
) -> None:
    # The review's case: the tenant's last account moved away, so the tenant is unknown by the send.
    alert_id, _ = _add(fast, hook, "team-b", include_existing=False)
    store = open_store(fast)
    waiting = detected(store.get(alert_id), tenant_data(fast, "team-a"), {})
    log_due(store, store.get(alert_id), waiting)
    store.close()
    with sqlite3.connect(store_path(fast.settings, fast.root)) as con:
        con.execute("UPDATE costlake_alerts SET tenant_id = 'team-gone' WHERE alert_id = ?", (alert_id,))
    result = send_alerts(fast).alerts[0]
    assert (result.delivered, result.left) == (0, 0) and hook.received == []
    states = [s for s in _states(fast, alert_id) if s[0] == DETECTED]
    assert states.count((DETECTED, "moved", 0)) == len(waiting) > 0
