"""The bodies of the webhooks: Standard Webhooks JSON (`type`, `timestamp`, `data`), or a Slack message.

JSON carries names from billing files as they are stored (the encoder escapes them: they are data).
A Slack message is mrkdwn that people read: names go through the name policy (text/names.py), and
`&`, `<`, `>` are escaped as Slack asks, so no name can make a `<url|label>` link or an @channel
mention; Slack may still auto-link a bare domain in a name (its text shows the address itself).
Money is exact decimal strings in JSON.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

from costlake.catalog.rows import Anomaly
from costlake.text.names import is_label, shown_value, with_kind

DETECTED = "anomaly.detected"
RESOLVED = "anomaly.resolved"
RUN_FAILED = "operations.run_failed"
DAY_HELD_BACK = "operations.day_held_back"
DATA_STALE = "operations.data_stale"
TEST = "alert.test"


def anomaly_data(anomaly: Anomaly, account_name: str | None, freshness: dict[str, Any]) -> dict[str, Any]:
    """What an anomaly event says about the anomaly (every value JSON-ready)."""
    return {
        "account_id": anomaly.account_id,
        "account_name": account_name,
        "service": anomaly.service_name,
        "usage_date": anomaly.usage_date.isoformat(),
        "kind": anomaly.kind,
        "direction": anomaly.direction,
        "actual_usd": _money(anomaly.actual_usd),
        "expected_usd": _money(anomaly.expected_usd),
        "impact_usd": _money(anomaly.impact_usd),
        "impact_pct": None if anomaly.impact_pct is None else _money(anomaly.impact_pct),
        "causes": [
            {"dimension": c.dimension, "value": c.value, "contribution_usd": _money(c.contribution_usd)}
            for c in anomaly.contributors
        ],
        "freshness": freshness,
    }


def event(kind: str, alert_id: str, tenant: str, data: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    """A whole event as the receiver gets it (JSON format)."""
    stamp = now.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return {"type": kind, "timestamp": stamp, "alert_id": alert_id, "tenant": tenant, "data": data}


def body(message: dict[str, Any], fmt: str) -> bytes:
    """The bytes sent: the event as compact JSON, or the Slack message for it.

    >>> body({"type": "alert.test", "tenant": "t", "data": {}}, "json")
    b'{"type":"alert.test","tenant":"t","data":{}}'
    """
    payload = slack_message(message) if fmt == "slack" else message
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def slack_escape(text: str) -> str:
    """Text that Slack's mrkdwn shows as it is: no `<...|label>` link, mention or markup comes out of it
    (Slack may still auto-link a bare domain in it).

    >>> slack_escape("<!channel> & <https://x|click>")
    '&lt;!channel&gt; &amp; &lt;https://x|click&gt;'
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _name(column: str, value: str | None) -> str:
    return slack_escape(shown_value(column, value) or "")


def slack_message(message: dict[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook payload (`{"text": ...}`) for an event."""
    kind, data = message["type"], message["data"]
    head = f"[costlake] {slack_escape(kind)} ({_name('tenant_id', message['tenant'])})"
    if kind in (DETECTED, RESOLVED):
        return {"text": f"{head}\n{_anomaly_line(data, kind == RESOLVED)}"}
    details = ", ".join(f"{k}: {_plain(v)}" for k, v in data.items() if k != "error")
    return {"text": f"{head}\n{slack_escape(details)}"}


def _anomaly_line(data: dict[str, Any], resolved: bool) -> str:
    # An account by its name and id, by its id alone when it has no name or the name is withheld.
    name, account_id = _name("account_name", data["account_name"]), slack_escape(data["account_id"])
    account = f"{name} ({account_id})" if name and not is_label(name) and name != account_id else account_id
    pct = f", {_signed(data['impact_pct'])}%" if data.get("impact_pct") is not None else ""
    line = (
        f"*{slack_escape(data['kind'])}* in {_name('service_name', data['service'])} on account {account}, "
        f"{data['usage_date']}: actual ${_usd(data['actual_usd'])}, "
        f"expected ${_usd(data['expected_usd'])} (impact ${_signed(data['impact_usd'])}{pct})"
    )
    causes = [
        f"{with_kind(slack_escape(c['dimension']), _name(c['dimension'], c['value']))} "
        f"${_signed(c['contribution_usd'])}"
        for c in data.get("causes", [])[:3]
    ]
    line += ("\ncauses: " + "; ".join(causes)) if causes else ""
    return ("resolved (no longer detected): " + line) if resolved else line


def _money(value: Decimal) -> str:
    return format(value, "f")


def _usd(text: str) -> str:
    return f"{Decimal(text):,.2f}"


def _signed(text: str) -> str:
    return f"{Decimal(text):+,.2f}"


def _plain(value: Any) -> str:
    return ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)
