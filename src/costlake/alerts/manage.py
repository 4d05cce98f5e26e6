"""Adding, rotating, removing and testing alerts: what the `costlake alerts` commands do.

A new alert must not flood its receiver with the tenant's whole history: `add` logs every anomaly the
tenant has at that moment as a `baseline` delivery (never sent), so the alert delivers anomalies
detected after it was made, and `resolved` events only for anomalies it delivered.
`include_existing=True` skips the baseline: the next send delivers the existing anomalies too (at most
`alert_max_per_send` per send).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Iterable
from decimal import Decimal
from urllib.parse import urlsplit

from costlake.alerts.deliver import FAILED, GONE, Outcome, deliver
from costlake.alerts.events import EVENT_GROUPS, Due, detected, split_first_sight
from costlake.alerts.payload import TEST
from costlake.alerts.secret_file import SecretFile, secrets_path
from costlake.alerts.send import log_due, log_first_sight, tenant_data
from costlake.alerts.signing import delivery_id, new_secret
from costlake.alerts.store import Alert, AlertStore
from costlake.catalog.views import tenant_accounts
from costlake.errors import ConfigError, InputError
from costlake.lake.api_keys import store_path
from costlake.lake.warehouse import Warehouse
from costlake.tables import UNASSIGNED_TENANT

FORMATS = ("json", "slack")


def open_store(wh: Warehouse) -> AlertStore:
    return AlertStore(store_path(wh.settings, wh.root))


def secret_file(wh: Warehouse) -> SecretFile:
    return SecretFile(secrets_path(wh.settings, wh.root))


MAX_URL_CHARS = 2048
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"  # one label of a DNS name
HOST_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")


def check_url(url: str) -> str | None:
    """Refuse a URL alerts cannot or must not post to; a warning for plain http to another host.

    >>> check_url("https://hooks.example.com/x"), check_url("http://127.0.0.1:8080/hook")
    (None, None)
    >>> check_url("http://example.com/hook")
    'the URL is plain http to a host that is not this machine: payloads and signatures travel unencrypted'
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise InputError("--url is not a valid URL (a malformed host or a port out of range)") from None
    if parts.scheme not in ("http", "https"):
        raise InputError(f"--url must be an http:// or https:// URL, not {parts.scheme or 'no'} scheme")
    if not parts.hostname:
        raise InputError("--url has no host")
    if len(url) > MAX_URL_CHARS or any(c.isspace() or not c.isprintable() for c in url):
        raise InputError(f"--url must be one line of at most {MAX_URL_CHARS} printable characters")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    netloc = parts.netloc.rpartition("@")[2].lower()
    if not _host_ok(parts.hostname) or netloc not in (host, f"{host}:{parts.port}"):
        raise InputError("--url has a malformed host (a name of letters, digits, '-' and '.', or an IP)")
    if parts.username is not None or parts.password is not None:
        raise InputError("--url must not carry credentials (user:password@): the signature authenticates")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        return (
            "the URL is plain http to a host that is not this machine: payloads and signatures travel "
            "unencrypted"
        )
    return None


def _host_ok(host: str) -> bool:
    """A DNS name (IDNA allowed) or an IP address: what an HTTP client can connect to.

    >>> [_host_ok(h) for h in ("hooks.slack.com", "::1", "bücher.example", "%zz", "a b", "x" * 300)]
    [True, True, True, False, False, False]
    """
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    try:
        name = host.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    return bool(HOST_NAME.fullmatch(name)) and len(name) <= 253


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def shown_url(url: str) -> str:
    """A URL as listings, logs and the SQLite store show it: scheme and host only, and `…` for the
    path and query left out (a Slack webhook URL's path is its token).

    >>> shown_url("https://h.example/hook?token=abc#x"), shown_url("https://h.example:8443")
    ('https://h.example/…', 'https://h.example:8443/')
    """
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    hidden = parts.path not in ("", "/") or parts.query or parts.fragment
    return f"{parts.scheme}://{host}/" + ("…" if hidden else "")


MAX_THRESHOLD = Decimal("1e12")
STEP = Decimal("0.000001")  # six decimal places at most


def threshold(flag: str, value: Decimal | None) -> Decimal | None:
    """A threshold as stored: finite, 0 to 1e12, at most six decimal places, -0 as 0.

    >>> threshold("--min-impact", Decimal("-0")), threshold("--min-pct", Decimal("12.50"))
    (Decimal('0'), Decimal('12.50'))
    """
    if value is None:
        return None
    if not value.is_finite() or value < 0 or value > MAX_THRESHOLD:
        raise InputError(f"{flag} must be a number from 0 to 1e12")
    if value != value.quantize(STEP):
        raise InputError(f"{flag} has more than six decimal places")
    return value if value else Decimal(0)


def parse_events(text: str) -> list[str]:
    chosen = [e.strip() for e in text.split(",") if e.strip()]
    if not chosen or any(e not in EVENT_GROUPS for e in chosen):
        raise InputError(f"--events is a comma-separated list of {', '.join(EVENT_GROUPS)}, not {text!r}")
    return chosen


def add_alert(
    wh: Warehouse,
    tenant: str,
    url: str,
    *,
    min_impact: Decimal | None = None,
    min_pct: Decimal | None = None,
    fmt: str = "json",
    events: Iterable[str] = ("anomalies",),
    include_existing: bool = False,
) -> tuple[Alert, str]:
    """A new alert and its signing secret (which the caller shows once)."""
    if fmt not in FORMATS:
        raise InputError(f"--format must be json or slack, not {fmt!r}")
    min_impact, min_pct = threshold("--min-impact", min_impact), threshold("--min-pct", min_pct)
    if tenant == UNASSIGNED_TENANT:
        raise InputError(
            f"'{UNASSIGNED_TENANT}' is no tenant: assign its accounts with `costlake tenants load`"
        )
    check_url(url)
    tenant_accounts(wh, tenant)  # an unknown or misspelt tenant stops here
    store = open_store(wh)
    try:
        alert = store.add(tenant, shown_url(url), min_impact, min_pct, fmt, events, include_existing)
        secret = new_secret()
        try:
            secret_file(wh).put(alert.alert_id, secret, url)
            if not include_existing:
                _baseline(wh, store, alert)
        except BaseException:
            store.remove(alert.alert_id)
            raise
    finally:
        store.close()
    return alert, secret


def _baseline(wh: Warehouse, store: AlertStore, alert: Alert) -> None:
    """Log what the tenant has now: its anomalies, never sent, and its accounts with data as seen
    (their later anomalies are news, whatever their day)."""
    tenant = tenant_data(wh, alert.tenant_id)
    _, baseline, marks = split_first_sight(alert, tenant, detected(alert, tenant, {}), set())
    log_first_sight(store, alert, baseline, marks)


def rotate_secret(wh: Warehouse, alert_id: str) -> tuple[Alert, str]:
    """A new signing secret for an alert; the old one signs nothing from now on."""
    store = open_store(wh)
    try:
        alert = store.get(alert_id)
    finally:
        store.close()
    secret = new_secret()
    secret_file(wh).put(alert.alert_id, secret)
    return alert, secret


def remove_alert(wh: Warehouse, alert_id: str) -> Alert:
    """Remove an alert, its delivery log and its secret."""
    store = open_store(wh)
    try:
        alert = store.get(alert_id)
        store.remove(alert.alert_id)
    finally:
        store.close()
    secret_file(wh).remove(alert.alert_id)
    return alert


def send_test(wh: Warehouse, alert_id: str) -> tuple[Alert, Outcome]:
    """Send a sample event (`alert.test`) now, signed like the others, and log its outcome."""
    store = open_store(wh)
    try:
        alert = store.get(alert_id)
        keys = secret_file(wh)
        secret, url = keys.get(alert.alert_id), keys.url(alert.alert_id)
        if secret is None or url is None:
            raise ConfigError(f"{alert.alert_id} has no signing secret or URL in the secrets file")
        now = dt.datetime.now(dt.UTC)
        msg_id = delivery_id(alert.alert_id, TEST, now.isoformat())
        data = {"message": "a test event from `costlake alerts test`; nothing happened", "sample": True}
        log_due(store, alert, [Due(msg_id, TEST, "{}", data)], state="testing")
        outcome = deliver(url, secret, msg_id, store.body(msg_id), wh.settings)
        state = "test-failed" if outcome.state == FAILED else outcome.state  # a test is never sent again
        store.outcome(msg_id, state, outcome.status, outcome.error, outcome.tries)
        if outcome.state == GONE:
            store.disable(alert.alert_id, "410 Gone")
    finally:
        store.close()
    return alert, outcome
