"""`costlake alerts send` and the last step of `costlake run`: log what is due, then deliver it.

For each active alert: read its tenant's anomalies (once per tenant), log every due event as a
`pending` delivery (committed before any POST), then POST the pending and failed deliveries, oldest
first, at most `alert_max_per_send` per alert, and log each outcome. A crash between a POST and its
outcome leaves the delivery `pending`: the next send posts it again with the same `webhook-id`
(at-least-once; receivers de-duplicate by that id). An endpoint that still fails after its retries
stops this alert's sending until the next send, and so does a rejected delivery (a 4xx or a redirect:
never sent again itself); a 410 disables the alert.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from costlake.alerts.deliver import DELIVERED, FAILED, GONE, REJECTED, Outcome, deliver
from costlake.alerts.events import (
    ACCOUNT_SEEN,
    ANOMALIES,
    OPERATIONS,
    Due,
    Operations,
    TenantData,
    anomaly_key,
    detected,
    identity,
    operations,
    resolved,
    split_first_sight,
)
from costlake.alerts.payload import DETECTED, RESOLVED, body, event
from costlake.alerts.secret_file import SecretFile, secrets_path
from costlake.alerts.store import RESEND, Alert, AlertStore, Delivery, has_active_alerts
from costlake.catalog import readers
from costlake.catalog.filters import MAX_LIMIT, Page
from costlake.catalog.views import UnknownTenant
from costlake.errors import CostlakeError
from costlake.lake.api_keys import store_path
from costlake.lake.faults import crash_point
from costlake.lake.warehouse import Warehouse
from costlake.tables import COST_ANOMALIES, DAILY_ACCOUNT, DIM_ACCOUNT

log = logging.getLogger(__name__)
CRASH_POINT = "alerts.after-send"  # between a POST and the logging of its outcome (tests crash here)
_TABLES = (COST_ANOMALIES.name, DIM_ACCOUNT.name, DAILY_ACCOUNT.name)


@dataclass
class AlertResult:
    alert_id: str
    delivered: int = 0
    failed: int = 0
    rejected: int = 0
    left: int = 0  # pending or failed after this send: the next one sends them
    disabled: bool = False
    problem: str | None = None

    def line(self) -> str:
        text = (
            f"{self.alert_id}: {self.delivered} delivered, {self.failed} failed, {self.rejected} rejected, "
            f"{self.left} left for the next send"
        )
        text += "; disabled (the endpoint answered 410 Gone)" if self.disabled else ""
        return text + (f"; {self.problem}" if self.problem else "")


@dataclass
class SendReport:
    alerts: list[AlertResult] = field(default_factory=list)
    deadline: float = float("inf")  # time.monotonic() after which no further POST starts
    out_of_time: bool = False
    every_anomaly: set[tuple[str, ...]] | None = None  # of all tenants, read once when needed
    unknown: set[str] = field(default_factory=set)  # tenants that own no account now

    def anywhere(self, wh: Warehouse) -> Callable[[], set[tuple[str, ...]]]:
        def read() -> set[tuple[str, ...]]:
            if self.every_anomaly is None:
                self.every_anomaly = all_anomalies(wh)
            return self.every_anomaly

        return read

    def has_time(self) -> bool:
        if time.monotonic() < self.deadline:
            return True
        if not self.out_of_time:
            self.out_of_time = True
            log.warning("alerts: the send budget is spent; what is not sent yet waits for the next send")
        return False


def send_alerts(wh: Warehouse, run: Operations | None = None, only: str | None = None) -> SendReport:
    """Deliver what is due for every active alert (or only alert `only`). With no alert configured this
    is one look at the store."""
    path = store_path(wh.settings, wh.root)
    if not has_active_alerts(path):
        return SendReport()
    store = AlertStore(path)
    try:
        keys = SecretFile(secrets_path(wh.settings, wh.root))
        tenants: dict[str, TenantData | None] = {}
        report = SendReport(deadline=time.monotonic() + wh.settings.alert_send_budget_seconds)
        for alert in store.alerts(active_only=True):
            if only is None or alert.alert_id == only:
                report.alerts.append(_send_alert(wh, store, keys, alert, run, tenants, report))
        return report
    finally:
        store.close()


def tenant_data(wh: Warehouse, tenant: str) -> TenantData:
    """The tenant's anomalies, account names and data freshness, read over one view of the lake."""
    with readers.session(wh, tenant, _TABLES):
        found, after = [], None
        while True:
            page = readers.anomalies(wh, tenant, page=Page(limit=MAX_LIMIT, after=after))
            found += page.rows
            if (after := page.next) is None:
                break
        accounts = readers.accounts(wh, tenant)
        names = {a.account_id: a.account_name for a in accounts}
        with_data = frozenset(a.account_id for a in accounts if a.last_usage_date is not None)
        latest, complete = readers.latest_usage_date(wh, tenant), readers.latest_complete_date(wh, tenant)
        published = readers.last_published_at(wh, tenant)
    freshness = {
        "latest_usage_date": None if latest is None else latest.isoformat(),
        "latest_complete_date": None if complete is None else complete.isoformat(),
        "last_published_at": None if published is None else published.isoformat(timespec="seconds") + "Z",
    }
    return TenantData(found, names, with_data, freshness, published)


def all_anomalies(wh: Warehouse) -> set[tuple[str, ...]]:
    """The identities of every tenant's anomalies (never shown to an alert: only whether one exists)."""
    found: set[tuple[str, ...]] = set()
    with readers.session(wh, None, (COST_ANOMALIES.name,)):
        after = None
        while True:
            page = readers.anomalies(wh, None, page=Page(limit=MAX_LIMIT, after=after))
            found |= {identity(anomaly_key(a)) for a in page.rows}
            if (after := page.next) is None:
                return found


def _tenant(
    wh: Warehouse, tenant: str, cache: dict[str, TenantData | None], unknown: set[str]
) -> TenantData | None:
    if tenant not in cache:
        try:
            cache[tenant] = tenant_data(wh, tenant)
        except CostlakeError as exc:  # an unknown tenant, a lake not built yet: operations still go
            if isinstance(exc, UnknownTenant):
                unknown.add(tenant)
            log.warning("alerts: cannot read tenant %s's anomalies: %s", tenant, exc)
            cache[tenant] = None
    return cache[tenant]


def due_events(
    wh: Warehouse,
    store: AlertStore,
    alert: Alert,
    run: Operations | None,
    tenant: TenantData | None,
    anywhere: Callable[[], set[tuple[str, ...]]],
) -> list[Due]:
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)  # published_at is naive UTC
    due: list[Due] = []
    if ANOMALIES in alert.events and tenant is not None:
        seen = set(store.subjects(alert.alert_id, ACCOUNT_SEEN, ("baseline",)))
        fresh = detected(alert, tenant, store.logged(alert.alert_id, DETECTED))
        fresh, baseline, marks = split_first_sight(alert, tenant, fresh, seen)
        log_first_sight(store, alert, baseline, marks)
        due += fresh
        sent = store.subjects(alert.alert_id, DETECTED, ("delivered", *RESEND))
        gone, moved = resolved(alert, tenant, sent, store.logged(alert.alert_id, RESOLVED), anywhere)
        log_due(store, alert, moved, state="moved")  # its account has another tenant now: never sent
        due += gone
    if OPERATIONS in alert.events:
        due += operations(alert, run, tenant, wh.settings.alert_stale_hours, now)
    return due


def log_first_sight(store: AlertStore, alert: Alert, baseline: list[Due], marks: list[Due]) -> None:
    """Log the anomalies of accounts seen for the first time as the alert's baseline (never sent), and
    the accounts as seen."""
    log_due(store, alert, baseline, state="baseline")
    store.log((m.delivery_id, alert.alert_id, m.event, m.subject, b"", "baseline") for m in marks)


def log_due(store: AlertStore, alert: Alert, due: list[Due], state: str = "pending") -> int:
    """Log due events as deliveries in `state`, with the bytes every sending of them will carry."""
    now = dt.datetime.now(dt.UTC)
    return store.log(
        (d.delivery_id, alert.alert_id, d.event, d.subject,
         body(event(d.event, alert.alert_id, alert.tenant_id, d.data, now), alert.format), state)
        for d in due
    )  # fmt: skip


def _send_alert(
    wh: Warehouse,
    store: AlertStore,
    keys: SecretFile,
    alert: Alert,
    run: Operations | None,
    tenants: dict[str, TenantData | None],
    report: SendReport,
) -> AlertResult:
    result = AlertResult(alert.alert_id)
    tenant = _tenant(wh, alert.tenant_id, tenants, report.unknown)
    owned = _owned(tenant, alert.tenant_id in report.unknown)
    log_due(store, alert, due_events(wh, store, alert, run, tenant, report.anywhere(wh)))
    secret, url = keys.get(alert.alert_id), keys.url(alert.alert_id)
    if secret is None or url is None:
        result.problem = "no signing secret or URL in the secrets file: remove the alert and add it again"
        log.warning("alerts: %s has no signing secret or URL; nothing sent", alert.alert_id)
    else:
        for pending in store.due(alert.alert_id, wh.settings.alert_max_per_send):
            if not report.has_time():
                break
            if (about := _account(pending)) is not None and owned is None:
                continue  # the tenant's accounts cannot be read now: the next send decides
            if about is not None and owned is not None and about not in owned:  # not the tenant's now
                store.outcome(pending.delivery_id, "moved", None, "the account belongs to another tenant", 0)
                continue
            outcome = deliver(url, secret, pending.delivery_id, pending.body, wh.settings)
            crash_point(CRASH_POINT)
            if not _record(store, alert, pending.delivery_id, pending.event, outcome, result):
                break
    result.left = store.count_due(alert.alert_id)
    if result.left:
        log.info("alerts: %s has %d deliveries left for the next send", alert.alert_id, result.left)
    return result


def _owned(tenant: TenantData | None, unknown: bool) -> frozenset[str] | None:
    """The accounts an alert's tenant owns now: none when it is an unknown tenant (its last account
    moved away), None when they cannot be read (the lake cannot be, say)."""
    if tenant is not None:
        return frozenset(tenant.account_names)
    return frozenset() if unknown else None


def _account(delivery: Delivery) -> str | None:
    """The account a logged anomaly event is about (None: an operations event). A delivery waits
    (an endpoint down, a send out of time) while `costlake tenants load` may move its account to
    another tenant, which must not be told of it."""
    if delivery.event not in (DETECTED, RESOLVED):
        return None
    return str(json.loads(delivery.subject).get("account_id"))


def _record(
    store: AlertStore, alert: Alert, msg_id: str, kind: str, outcome: Outcome, result: AlertResult
) -> bool:
    """Log a delivery's outcome; False when this alert should send nothing more now."""
    store.outcome(msg_id, outcome.state, outcome.status, outcome.error, outcome.tries)
    if outcome.state == DELIVERED:
        result.delivered += 1
        return True
    log.warning("alerts: %s delivery %s (%s): %s", alert.alert_id, msg_id, kind, outcome.error)
    if outcome.state == REJECTED:  # stays rejected; the rest waits, so one bad answer discards one delivery
        result.rejected += 1
        return False
    if outcome.state == GONE:
        store.disable(alert.alert_id, "410 Gone")
        result.disabled = True
        return False
    assert outcome.state == FAILED
    result.failed += 1
    return False  # the endpoint is down: the rest waits for the next send
