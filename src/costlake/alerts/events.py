"""What an alert has due: new and resolved anomalies of its tenant, and operations events. Pure: the
caller reads the lake and the delivery log, this decides.

* New: an anomaly of the tenant's accounts at or above the alert's thresholds whose delivery id is not
  in the log yet (so an anomaly is never sent under two ids, whatever state its delivery is in),
  whatever its day: a late bill or a backfill that makes an anomaly on an old day is news. Only the
  anomalies of an account the alert sees for the first time (the first data of the tenant, or an
  account moved in from another tenant) are its baseline, logged and never sent, unless the alert was
  added with `--include-existing` (`split_first_sight`).
* Resolved: an anomaly whose `anomaly.detected` delivery was logged (and not rejected) and that
  `cost_anomalies` no longer holds for any tenant, e.g. after a correction: one `anomaly.resolved`
  event. One that moved to another tenant's account is logged `moved` instead, never sent.
* Thresholds: `min_impact` on |impact_usd|, `min_pct` on |impact_pct|, both when both are set. An
  anomaly with no percentage (its expected cost was 0: a new service) passes `min_pct`: growth from
  nothing is larger than any percentage.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from costlake.alerts.payload import DATA_STALE, DAY_HELD_BACK, DETECTED, RESOLVED, RUN_FAILED, anomaly_data
from costlake.alerts.signing import delivery_id
from costlake.alerts.store import Alert
from costlake.catalog.rows import Anomaly

ANOMALIES, OPERATIONS = "anomalies", "operations"
ACCOUNT_SEEN = "account.seen"  # a log-only row per account an alert has seen data of (never sent)
EVENT_GROUPS = (ANOMALIES, OPERATIONS)
IDENTITY = ("account_id", "service", "usage_date", "kind")


@dataclass(frozen=True)
class Due:
    """An event to log and send: its delivery id, type, subject (what the log keeps) and data."""

    delivery_id: str
    event: str
    subject: str
    data: dict[str, Any]


@dataclass(frozen=True)
class TenantData:
    """What the lake says of one tenant now."""

    anomalies: list[Anomaly]
    account_names: dict[str, str | None]
    with_data: frozenset[str]  # the accounts with a published day
    freshness: dict[str, Any]  # latest_usage_date, latest_complete_date, last_published_at
    last_published_at: dt.datetime | None  # UTC


@dataclass(frozen=True)
class Operations:
    """What a run tells the alerts: its id, the days the gate held back, or that it failed."""

    run_id: str | None = None
    held_back: tuple[dt.date, ...] = ()
    failed: str | None = None  # the kind of error of a run that raised


def passes(alert: Alert, anomaly: Anomaly) -> bool:
    if alert.min_impact is not None and abs(anomaly.impact_usd) < alert.min_impact:
        return False
    pct = anomaly.impact_pct
    return alert.min_pct is None or pct is None or abs(pct) >= alert.min_pct


def identity(data: Mapping[str, Any]) -> tuple[str, ...]:
    """The anomaly an event is about: account, service, day and kind."""
    return tuple(str(data[k]) for k in IDENTITY)


def detected(alert: Alert, tenant: TenantData, logged: Mapping[str, str]) -> list[Due]:
    """The tenant's anomalies at or above the thresholds, not logged yet for this alert, of any day."""
    due = []
    for anomaly in tenant.anomalies:
        if not passes(alert, anomaly):
            continue
        data = anomaly_data(anomaly, tenant.account_names.get(anomaly.account_id), tenant.freshness)
        msg_id = delivery_id(alert.alert_id, DETECTED, *identity(data))
        if msg_id not in logged:
            due.append(Due(msg_id, DETECTED, json.dumps(data, sort_keys=True), data))
    return due


def split_first_sight(
    alert: Alert, tenant: TenantData, due: list[Due], seen: set[str]
) -> tuple[list[Due], list[Due], list[Due]]:
    """(to send, baseline, accounts seen now): the anomalies of an account the alert had not seen
    (`seen`) are its baseline, and each account with data it had not seen is marked seen. With
    `--include-existing` every anomaly is sent.

    >>> alert = Alert("alr_1", "t", "https://x/", None, None, "json", frozenset({"anomalies"}), None, None)
    >>> tenant = TenantData([], {}, frozenset({"a1", "a2"}), {}, None)
    >>> due = [Due(m, DETECTED, "", {"account_id": a}) for m, a in (("m1", "a1"), ("m2", "a2"))]
    >>> send, baseline, marks = split_first_sight(alert, tenant, due, {"a1"})
    >>> [d.delivery_id for d in send], [d.delivery_id for d in baseline], [m.subject for m in marks]
    (['m1'], ['m2'], ['a2'])
    """
    if alert.include_existing:
        return due, [], []
    send = [d for d in due if d.data["account_id"] in seen]
    baseline = [d for d in due if d.data["account_id"] not in seen]
    marks = [
        Due(delivery_id(alert.alert_id, ACCOUNT_SEEN, account), ACCOUNT_SEEN, account, {})
        for account in sorted(tenant.with_data - seen)
    ]
    return send, baseline, marks


def resolved(
    alert: Alert,
    tenant: TenantData,
    sent: Iterable[str],
    logged: Mapping[str, str],
    anywhere: Callable[[], set[tuple[str, ...]]],
) -> tuple[list[Due], list[Due]]:
    """A `resolved` event for each sent anomaly (`sent`: the subjects of its logged deliveries) that is
    no longer detected for any tenant (`anywhere`: the identities of all anomalies, read when needed);
    and, to log as `moved` (never sent), those now detected for another tenant only."""
    now = {identity(anomaly_key(a)) for a in tenant.anomalies}
    due: list[Due] = []
    moved: list[Due] = []
    for subject in sent:
        data = json.loads(subject)
        msg_id = delivery_id(alert.alert_id, RESOLVED, *identity(data))
        if identity(data) in now or msg_id in logged:
            continue
        gone = identity(data) not in anywhere()
        (due if gone else moved).append(
            Due(msg_id, RESOLVED, subject, data | {"freshness": tenant.freshness})
        )
    return due, moved


def anomaly_key(a: Anomaly) -> dict[str, str]:
    return {"account_id": a.account_id, "service": a.service_name, "usage_date": a.usage_date.isoformat(),
            "kind": a.kind}  # fmt: skip


def operations(
    alert: Alert, run: Operations | None, tenant: TenantData | None, stale_hours: float, now: dt.datetime
) -> list[Due]:
    """Operations events: a failed run, days the gate held back, and the tenant's data gone stale (one
    event per stale spell: its id follows the last publication)."""
    due = []
    if run is not None and run.failed is not None:
        data = {"run_id": run.run_id, "error": run.failed, "failed_at": now.isoformat(timespec="seconds")}
        due.append(_op(alert, RUN_FAILED, data, run.run_id or data["failed_at"]))
    if run is not None and run.held_back:
        days = [d.isoformat() for d in run.held_back]
        due.append(_op(alert, DAY_HELD_BACK, {"run_id": run.run_id, "days": days}, run.run_id, *days))
    last = tenant.last_published_at if tenant is not None else None
    if last is not None and now - last > dt.timedelta(hours=stale_hours):
        since = last.isoformat(timespec="seconds") + "Z"
        due.append(
            _op(alert, DATA_STALE, {"last_published_at": since, "stale_after_hours": stale_hours}, since)
        )
    return due


def _op(alert: Alert, event: str, data: dict[str, Any], *key: object) -> Due:
    return Due(delivery_id(alert.alert_id, event, *key), event, json.dumps(data, sort_keys=True), data)
