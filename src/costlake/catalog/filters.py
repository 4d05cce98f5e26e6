"""What a reader is asked: typed filters, and a keyset page with an opaque position.

Filters are pydantic models (frozen, extra keys refused), so an API can take them as query
parameters as they are. Each becomes SQL conditions with `?` parameters, never with the values
pasted into the text.

A listing is in one total order (its sort key is unique per row), and a page starts strictly after
the sort key of the previous page's last row. Paging is stable: rows committed between two requests
appear in their place instead of shifting every later page by one.

>>> keys = Keyset("costs", ("usage_date", "account_id"))
>>> position = keys.position({"usage_date": dt.date(2025, 3, 2), "account_id": "A1", "cost": 1})
>>> keys.after(position)
('(usage_date, account_id) > (?, ?)', [datetime.date(2025, 3, 2), 'A1'])
>>> CostFilters(service=" AmazonEC2 ").conditions()
(['service_name = lower(trim(?))'], [' AmazonEC2 '])
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from costlake.errors import InputError

MAX_LIMIT = 1000


def check_window(date_from: dt.date | None, date_to: dt.date | None) -> None:
    """A window of days that ends before it starts is refused in the words of its parameters."""
    if date_from is not None and date_to is not None and date_from > date_to:
        raise ValueError(f"'from' ({date_from}) is after 'to' ({date_to})")


class CostFilters(BaseModel):
    """Which published rows: a window of usage days (both ends included), an account, a service."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    date_from: dt.date | None = None
    """First usage day (inclusive)."""
    date_to: dt.date | None = None
    """Last usage day (inclusive)."""
    account_id: str | None = None
    """One account. Another tenant's account answers like an account that does not exist: no rows."""
    service: str | None = None
    """One service, as published (trimmed and lower-cased the way stage 1 does; `AmazonEC2` finds
    `amazonec2`)."""

    @model_validator(mode="after")
    def _window(self) -> CostFilters:
        check_window(self.date_from, self.date_to)
        return self

    def conditions(self) -> tuple[list[str], list[Any]]:
        """SQL conditions (to AND together) and their parameters, in order."""
        found: list[tuple[str, Any]] = [
            ("usage_date >= ?", self.date_from),
            ("usage_date <= ?", self.date_to),
            ("account_id = ?", self.account_id),
            ("service_name = lower(trim(?))", self.service),
        ]
        return _present(found)


class DailyCostFilters(CostFilters):
    """Daily cost: the filters, what a row totals (per account or per service) and which cost."""

    group_by: Literal["account", "service"] = "account"
    """A row per (day, account) or per (day, service)."""
    cost: Literal["billed", "effective"] = "billed"
    """Billed (`total_cost_usd`) or amortised (`effective_cost_usd`) cost."""


MAX_IMPACT = Decimal(10) ** 26  # DECIMAL(38,12) holds 26 digits before the point


class AnomalyFilters(CostFilters):
    """Anomalies: the filters, plus a kind and a minimum dollar impact."""

    kind: str | None = None
    """spike, dip, step_up, step_down, new_service, dropped_to_zero or mix_shift."""
    min_impact: Decimal | None = Field(default=None, ge=0, lt=MAX_IMPACT, decimal_places=12)
    """Only anomalies whose impact is at least this many dollars, up or down: a DECIMAL(38,12) value, as
    the impacts are (a bound with more places, or larger, would not fit the comparison)."""

    def conditions(self) -> tuple[list[str], list[Any]]:
        where, params = super().conditions()
        more, values = _present([("kind = ?", self.kind), ("abs(impact_usd) >= ?", self.min_impact)])
        return where + more, params + values


def _present(found: list[tuple[str, Any]]) -> tuple[list[str], list[Any]]:
    kept = [(sql, value) for sql, value in found if value is not None]
    return [sql for sql, _ in kept], [value for _, value in kept]


class Page(BaseModel):
    """At most `limit` rows, starting after `after` (the `next` of the page before; None: the start)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    limit: int = Field(default=100, ge=1, le=MAX_LIMIT)
    """Rows per page."""
    after: str | None = None
    """Opaque position: the `next` of the previous page."""


MAX_POSITION_BYTES = 1 << 20  # no position holds more: a forged one is refused before it is inflated


def inflate(data: bytes, limit: int = MAX_POSITION_BYTES) -> bytes:
    """`data` decompressed (zlib), refused (ValueError) when it would be larger than `limit` bytes."""
    inflater = zlib.decompressobj()
    out = inflater.decompress(data, limit)
    if inflater.unconsumed_tail or not inflater.eof:
        raise ValueError("not a whole position, or one larger than a position can be")
    return out


@dataclass(frozen=True)
class Keyset:
    """The total order of one listing: its name and its sort columns, each ascending or, written
    `-column`, descending. A column may be computed: `expressions` gives its SQL (the listing selects
    it under that name); its values, like those of `decimals`, are exact decimals. A position names
    the listing it came from, so one listing's position is refused by another instead of silently
    starting elsewhere.

    >>> big = Keyset("a", ("-impact", "usage_date"), {"impact": "abs(x)"}, ("impact",))
    >>> sql, params = big.after(big.position({"impact": Decimal("2.50"), "usage_date": dt.date(2025, 1, 2)}))
    >>> sql
    '(abs(x) < ? OR (abs(x) = ? AND usage_date > ?))'
    >>> params
    [Decimal('2.50'), Decimal('2.50'), datetime.date(2025, 1, 2)]
    """

    listing: str
    columns: tuple[str, ...]
    expressions: Mapping[str, str] = field(default_factory=dict)
    decimals: tuple[str, ...] = ()

    @property
    def _keys(self) -> list[tuple[str, bool]]:
        """(column name, descending) of each sort column."""
        return [(c.lstrip("-"), c.startswith("-")) for c in self.columns]

    @property
    def order_by(self) -> str:
        return ", ".join(f"{name} DESC" if desc else name for name, desc in self._keys)

    def position(self, row: Mapping[str, Any]) -> str:
        """The opaque position after `row`."""
        key = [self._text(name, row[name]) for name, _ in self._keys]
        # Names as UTF-8, not as JSON's \\u escapes, and compressed: a page's last name may be as long as
        # ingestion allows, and its position must fit a URL.
        text = json.dumps([self.listing, *key], separators=(",", ":"), ensure_ascii=False)
        return base64.urlsafe_b64encode(zlib.compress(text.encode(), 9)).decode().rstrip("=")

    def after(self, position: str) -> tuple[str, list[Any]]:
        """The condition (and its parameters) that keeps the rows after `position`."""
        key = self._decode(position)
        if not any(desc for _, desc in self._keys) and not self.expressions:
            placeholders = ", ".join("?" for _ in self.columns)
            return f"({self.order_by}) > ({placeholders})", key
        terms, params = [], []
        for i, (name, desc) in enumerate(self._keys):  # equal on the columns before, past on this one
            sql = [f"{self._sql(n)} = ?" for n, _ in self._keys[:i]]
            sql.append(f"{self._sql(name)} {'<' if desc else '>'} ?")
            terms.append(sql[0] if len(sql) == 1 else f"({' AND '.join(sql)})")
            params += key[: i + 1]
        return f"({' OR '.join(terms)})", params

    def _sql(self, name: str) -> str:
        return self.expressions.get(name, name)

    def _text(self, name: str, value: Any) -> str:
        if name == "usage_date":
            return str(value.isoformat())
        return str(value)

    def _decode(self, position: str) -> list[Any]:
        try:
            raw = inflate(base64.urlsafe_b64decode(position + "=" * (-len(position) % 4)))
            listing, *key = json.loads(raw)
            if listing != self.listing or len(key) != len(self.columns):
                raise ValueError
            if not all(isinstance(v, str) for v in key):
                raise ValueError
            return [self._value(name, v) for (name, _), v in zip(self._keys, key, strict=True)]
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, ArithmeticError, zlib.error):
            raise InputError(
                f"page position {position[:40]!r} is not one this listing ({self.listing}) gave; "
                "start again without it"
            ) from None

    def _value(self, name: str, text: str) -> Any:
        if name == "usage_date":
            return dt.date.fromisoformat(text)
        if name in self.decimals:
            value = Decimal(text)
            if not value.is_finite():
                raise ValueError(text)
            return value
        return text
