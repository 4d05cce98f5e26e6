"""The sentence of an anomaly chunk, and the safe formatting of what goes into it.

Text comes from structured fields only. Names (account names, services, contributor values) arrive
here already through the name policy (`costlake.text.names`, applied by `chunks.shown_metadata`): each
is a name that reads like a name, or a label such as `region 988751 (name withheld)`, which is written
as it is. Kinds and methods come from detection and are reduced to a safe alphabet. Money, percentages
and dates are written by `formatting.py` (half-up to cents and to 0.1%), the rule the offline composer
uses too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from costlake.rag.formatting import format_date, format_long_date, format_pct, format_signed_usd, format_usd
from costlake.text.names import is_label

_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9 ._-]+")


def sanitize_label(value: str, max_len: int = 64) -> str:
    """Keeps letters, digits, space and '._-' (other runs become one space), `max_len` chars at most.

    >>> sanitize_label("step_up; say $1")
    'step_up say 1'
    """
    cleaned = " ".join(_LABEL_UNSAFE.sub(" ", value).split())
    return cleaned[:max_len].rstrip()


def account_phrase(account_id: str, account_name: str | None, *, name_first: bool = False) -> str:
    """How text names an account: by id and name; by id alone when the name was withheld.

    >>> account_phrase("334112345678", "payments-prod"), account_phrase("1", "a", name_first=True)
    ('account 334112345678 (payments-prod)', 'account a (1)')
    >>> account_phrase("334112345678", "account 4a8d31 (name withheld)")
    'account 334112345678 (name withheld)'
    """
    who = account_id if is_label(account_id) else f"account {account_id}"
    if not account_name or account_name == account_id:
        return who
    if is_label(account_name):
        return f"{who} (name withheld)"
    return f"account {account_name} ({account_id})" if name_first else f"{who} ({account_name})"


def service_phrase(meta: Mapping[str, Any]) -> str:
    """How text names a service: its display name (product name or spelling) when one was kept and may
    be shown, else its key (or the key's label).

    >>> service_phrase({"service_name": "amazoneks", "service_display_name": "Amazon Elastic Kubernetes"})
    'Amazon Elastic Kubernetes'
    >>> withheld = "service 3f2a9c (name withheld)"
    >>> service_phrase({"service_name": "amazoneks", "service_display_name": withheld})
    'amazoneks'
    """
    display = meta.get("service_display_name")
    if isinstance(display, str) and display and not is_label(display):
        return display
    return str(meta.get("service_name") or "") or "an unnamed service"


def dimension_phrase(dimension: str, value: str) -> str:
    """A contributor in words: "region us-east-1", or the label of a withheld value as it is.

    >>> dimension_phrase("pricing_model", "Savings Plan")
    'pricing model Savings Plan'
    >>> dimension_phrase("region", "region 988751 (name withheld)")
    'region 988751 (name withheld)'
    """
    return value if is_label(value) else f"{_DIMENSION_LABELS.get(dimension, dimension)} {value}"


_KIND_LABELS = {
    "spike": "a spike",
    "dip": "a dip",
    "step_up": "a step up",
    "step_down": "a step down",
    "new_service": "a new service",
    "dropped_to_zero": "a drop to zero",
    "mix_shift": "a mix shift",
}
_DIMENSION_LABELS = {
    "pricing_model": "pricing model",
    "charge_category": "charge category",
    "usage_type": "usage type",
    "account_id": "account",
    "service_name": "service",
}


def chunk_text(meta: Mapping[str, Any]) -> str:
    """The chunk sentence for one anomaly's metadata (as built by `build_chunks`); deterministic.

    >>> chunk_text({"usage_date": "2025-03-02", "account_id": "334112345678", "account_name": "payments-prod",
    ...     "service_name": "amazonrds", "service_display_name": "Amazon Relational Database Service",
    ...     "method": "baseline", "kind": "spike", "actual_usd": "1204.5",
    ...     "expected_usd": "386.2", "expected_low_usd": None, "expected_high_usd": None,
    ...     "impact_usd": "818.3", "impact_pct": "211.8902", "duration_days": 1, "ongoing": False,
    ...     "top_dimension": None,
    ...     "contributors": [{"dimension": "region", "value": "us-east-1", "contribution_usd": "790.1"},
    ...                      {"dimension": "pricing_model", "value": "reserved", "contribution_usd": "847"}]})
    'On 2025-03-02 (Sunday, March 2, 2025), account payments-prod (334112345678) spent $1,204.50 on \
Amazon Relational Database Service, $818.30 (211.9%) above the expected $386.20; the increase split by \
region: us-east-1 (+$790.10); by pricing model: reserved (+$847.00). Classified as a spike by the baseline \
method.'
    """
    day = date.fromisoformat(meta["usage_date"])
    service = service_phrase(meta)
    actual, expected, impact = (Decimal(meta[name]) for name in ("actual_usd", "expected_usd", "impact_usd"))
    kind = str(meta["kind"])
    account = account_phrase(str(meta["account_id"] or "unknown"), meta.get("account_name"), name_first=True)
    head = f"On {format_date(day)} ({format_long_date(day)}), {account}"
    rising = impact >= 0
    change = f"{format_usd(abs(impact))}{_pct_part(meta)} {'above' if impact >= 0 else 'below'} the expected "
    change += format_usd(expected) + _range_part(meta)
    if expected == 0:  # "$0.00 expected" would read as an amount; grounding takes zero only as spend
        change = "with nothing expected" + _range_part(meta)
    contributors = _contributors_of(meta)
    if kind in ("step_up", "step_down"):
        lasting = _lasting(meta)
        body = (
            f"{head} saw a sustained step {'up' if kind == 'step_up' else 'down'} on {service} since "
            f"{format_date(day)}{lasting}: daily spend was {format_usd(actual)}, {change}"
        )
        body += _because(contributors, rising=kind == "step_up")
    elif kind == "new_service":
        body = f"{head} started spending on {service}, new for this account: {_spent(actual)}, {change}"
        body += _because(contributors, rising=True)
    elif kind == "dropped_to_zero":
        body = (
            f"{head} spent {format_usd(actual)} on {service}, which dropped to zero from the expected "
            f"{format_usd(expected)} ({format_signed_usd(impact)})"
        )
        body += _because(contributors, rising=False)
    elif kind == "mix_shift":
        body = f"{head} {_spent(actual)} on {service}, close to the expected {format_usd(expected)}, but "
        body += _shift(contributors) + f" while the total stayed near {format_usd(actual)}"
    else:
        body = f"{head} {_spent(actual)} on {service}, {change}" + _because(contributors, rising=rising)
        body += _duration_sentence(meta)
    label = _KIND_LABELS.get(kind, f"an anomaly of kind {sanitize_label(kind) or 'unknown'}")
    method = {"day_over_day": "day-over-day"}.get(str(meta["method"]), sanitize_label(str(meta["method"])))
    return f"{body}. Classified as {label} by the {method} method."


def _spent(actual: Decimal) -> str:
    if actual < 0:
        return f"recorded a net credit of {format_usd(actual)} (credits exceeded charges)"
    return f"spent {format_usd(actual)}"


def _pct_part(meta: Mapping[str, Any]) -> str:
    pct = meta.get("impact_pct")
    return "" if pct is None else f" ({format_pct(abs(Decimal(pct)))})"


def _range_part(meta: Mapping[str, Any]) -> str:
    low, high = meta.get("expected_low_usd"), meta.get("expected_high_usd")
    if low is None or high is None:
        return ""
    return f" (usual range {format_usd(Decimal(low))} to {format_usd(Decimal(high))})"


def _lasting(meta: Mapping[str, Any]) -> str:
    days = meta.get("duration_days")
    if days is None:
        return " (ongoing)" if meta.get("ongoing") else ""
    text = f", lasting {days} day{'s' if days != 1 else ''}"
    return text + (" (ongoing)" if meta.get("ongoing") else "")


def _duration_sentence(meta: Mapping[str, Any]) -> str:
    days, ongoing = meta.get("duration_days"), bool(meta.get("ongoing"))
    if days is not None and days > 1:
        return f". It has lasted {days} days so far (ongoing)" if ongoing else f". It lasted {days} days"
    return ". It is ongoing" if ongoing else ""


def _contributors_of(meta: Mapping[str, Any]) -> list[tuple[str, Decimal, str]]:
    """(value, contribution, dimension) such as ("us-east-1", 790.1, "region"), in the order detection
    ranked them; else the top_dimension/top_value."""
    items = [(c["dimension"], c["value"], c["contribution_usd"]) for c in meta.get("contributors") or []]
    if not items and meta.get("top_dimension") and meta.get("top_contribution_usd") is not None:
        items = [(meta["top_dimension"], meta["top_value"], meta["top_contribution_usd"])]
    return [(str(v), Decimal(amount), str(d)) for d, v, amount in items]


def _because(contributors: list[tuple[str, Decimal, str]], *, rising: bool) -> str:
    """The clause naming the movers in the anomaly's direction, each dimension on its own ("the increase
    split by region: us-east-1 (+$608.00); by pricing model: reserved (+$847.00)"): the regions of a
    change and its pricing models are two views of the same dollars, so values of different dimensions
    are never listed together as if they added up. At most two values of each of three dimensions, in
    the order detection ranked them."""
    moved: dict[str, list[tuple[str, Decimal, str]]] = {}
    for item in contributors:
        if item[1] > 0 if rising else item[1] < 0:
            moved.setdefault(item[2], []).append(item)
    parts = [
        f"{_DIMENSION_LABELS.get(dimension, dimension)}: "
        + ", ".join(f"{value} ({format_signed_usd(amount)})" for value, amount, _ in items[:2])
        for dimension, items in list(moved.items())[:3]
    ]
    if not parts:
        return ""
    return f"; the {'increase' if rising else 'decrease'} split by " + "; by ".join(parts)


def _shift(contributors: list[tuple[str, Decimal, str]]) -> str:
    losers = [c for c in contributors if c[1] < 0]  # each in the order detection ranked them
    gainers = [c for c in contributors if c[1] > 0]
    if not losers or not gainers:
        return "the mix of spend changed"
    (from_value, from_amount, from_dim), (to_value, to_amount, to_dim) = losers[0], gainers[0]
    from_label, to_label = dimension_phrase(from_dim, from_value), dimension_phrase(to_dim, to_value)
    return (
        f"spend moved from {from_label} ({format_signed_usd(from_amount)}) "
        f"to {to_label} ({format_signed_usd(to_amount)})"
    )
