"""A real `costlake run` killed between a webhook POST and the logging of its outcome: the next
`costlake alerts send` posts that delivery again under the same webhook-id, and no anomaly ever
arrives under two ids."""

from __future__ import annotations

import sqlite3

import pytest

from costlake.alerts.manage import add_alert
from costlake.alerts.send import CRASH_POINT
from costlake.lake.api_keys import store_path
from costlake.lake.faults import ENV, EXIT_CODE
from helpers import cli
from two_tenants import build_lake
from webhook_receiver import receiver, verify


def test_a_crash_between_sending_and_logging_resends_under_the_same_id(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wh = build_lake(tmp_path)
    with receiver() as hook:
        secrets = dict(
            add_alert(wh, tenant, hook.url, include_existing=True) for tenant in ("team-a", "team-b")
        )
        monkeypatch.setenv(ENV, CRASH_POINT)
        crashed = cli(wh.settings.warehouse, "run")
        assert crashed.returncode == EXIT_CODE, crashed.stdout + crashed.stderr
        assert len(hook.received) == 1  # posted, then killed before its outcome was logged
        first = hook.received[0]
        with sqlite3.connect(store_path(wh.settings, wh.root)) as con:
            state = con.execute(
                "SELECT state FROM costlake_alert_deliveries WHERE delivery_id = ?", (first.id,)
            ).fetchone()
        assert state == ("pending",)
        monkeypatch.delenv(ENV)
        resent = cli(wh.settings.warehouse, "alerts", "send")
        assert resent.returncode == 0, resent.stdout + resent.stderr
        again = cli(wh.settings.warehouse, "alerts", "send")
        assert again.returncode == 0 and "0 delivered" in again.stdout
    ids = [g.id for g in hook.received]
    assert len(ids) == 3 and ids.count(first.id) == 2  # the crashed one twice (same id), the other once
    assert hook.received[1].body == first.body  # the same bytes; a fresh timestamp and signature
    by_anomaly: dict[tuple[str, ...], set[str]] = {}
    for got in hook.received:
        event = got.event
        alert = next(a for a in secrets if a.alert_id == event["alert_id"])
        assert verify(secrets[alert], got) and event["tenant"] == alert.tenant_id
        key = (
            event["alert_id"],
            *(event["data"][k] for k in ("account_id", "service", "usage_date", "kind")),
        )
        by_anomaly.setdefault(key, set()).add(got.id)
    assert len(by_anomaly) == 2 and all(len(found) == 1 for found in by_anomaly.values())
