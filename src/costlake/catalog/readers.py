"""Tenant-scoped readers: what the API and the explanation layer read from the lake.

Every reader takes the tenant first: a tenant id reads only that tenant's accounts (the cut of
catalog/views.py, written once there); None is the operator's view of every tenant. An unknown
tenant raises `UnknownTenant`. The SQL is fixed; filter values travel as `?` parameters. Money stays
`Decimal`. Listings come in pages of a total order (`Page`, `PageOf.next`).

Readers see what `costlake query` sees: the stage tables as of the latest finished run, the other
tables as they are now. Each call reads the catalog afresh, so a long-lived process sees new runs.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any

import duckdb
import pyarrow as pa

from costlake.catalog.filters import AnomalyFilters, CostFilters, DailyCostFilters, Keyset, Page
from costlake.catalog.rows import (
    Account,
    AccountServiceCost,
    Anomaly,
    Contributor,
    DailyCost,
    PageOf,
    T,
    contributor_values,
)
from costlake.catalog.views import open_lake
from costlake.duck import to_arrow
from costlake.errors import InputError
from costlake.lake.warehouse import Warehouse
from costlake.tables import (
    ACCOUNT_SERVICE_DAY,
    COST_ANOMALIES,
    DAILY_ACCOUNT,
    DIM_ACCOUNT,
    DIM_SERVICE,
    UNASSIGNED_TENANT,
)


def accounts(wh: Warehouse, tenant: str | None) -> list[Account]:
    """The accounts in dim_account (the tenant's), by account_id."""
    sql = f"""SELECT account_id, account_name, tenant_id, first_usage_date, last_usage_date
              FROM {DIM_ACCOUNT.name} WHERE account_id IS NOT NULL ORDER BY account_id"""
    rows = _select(wh, tenant, [DIM_ACCOUNT.name], sql, [])
    return [Account(**(r | {"tenant_id": r["tenant_id"] or UNASSIGNED_TENANT})) for r in rows]


def accounts_table(rows: Iterable[Account]) -> pa.Table:
    """Accounts as Arrow (account_id, account_name, tenant_id, ...), for code that takes tables."""
    schema = DIM_ACCOUNT.arrow_schema()
    names = [f.name for f in fields(Account)]
    return pa.Table.from_pylist(
        [{n: getattr(a, n) for n in names} for a in rows],
        schema=pa.schema([schema.field(n) for n in names]),
    )


def latest_usage_date(wh: Warehouse, tenant: str | None) -> dt.date | None:
    """The last published usage day (of the tenant's accounts); None before anything is published."""
    sql = f"SELECT max(usage_date) AS latest FROM {DAILY_ACCOUNT.name}"
    latest: dt.date | None = _select(wh, tenant, [DAILY_ACCOUNT.name], sql, [])[0]["latest"]
    return latest


def first_usage_date(wh: Warehouse, tenant: str | None) -> dt.date | None:
    """The first published usage day (of the tenant's accounts); None before anything is published."""
    sql = f"SELECT min(usage_date) AS first FROM {DAILY_ACCOUNT.name}"
    first: dt.date | None = _select(wh, tenant, [DAILY_ACCOUNT.name], sql, [])[0]["first"]
    return first


def last_published_at(wh: Warehouse, tenant: str | None) -> dt.datetime | None:
    """When stage 3 last published a row of the tenant's accounts (UTC): the last time new data for
    them went through a run. None before anything is published."""
    sql = f"SELECT max(published_at) AS last FROM {DAILY_ACCOUNT.name}"
    last: dt.datetime | None = _select(wh, tenant, [DAILY_ACCOUNT.name], sql, [])[0]["last"]
    return last


def latest_complete_date(wh: Warehouse, tenant: str | None) -> dt.date | None:
    """The last usage day whose data is complete (T+1) for every one of the tenant's accounts billed
    that day, else the last published day; None before anything is published. Relative dates in
    questions count from it."""
    sql = f"""SELECT max(usage_date) FILTER (WHERE complete) AS complete, max(usage_date) AS latest
              FROM (SELECT usage_date, bool_and(COALESCE(data_complete, false)) AS complete
                    FROM {DAILY_ACCOUNT.name} GROUP BY usage_date)"""
    row = _select(wh, tenant, [DAILY_ACCOUNT.name], sql, [])[0]
    latest: dt.date | None = row["complete"] or row["latest"]
    return latest


def service_names(wh: Warehouse, tenant: str | None) -> dict[str, str | None]:
    """Each service key of the tenant's costs with the name to show for it: its product name (CUR,
    FOCUS), else its spelling in the bills (dim_service), else None. Not yet through the name policy."""
    sql = f"SELECT service_name, COALESCE(product_name, display_name) AS name FROM {DIM_SERVICE.name}"
    return {r["service_name"]: r["name"] for r in _select(wh, tenant, [DIM_SERVICE.name], sql, [])}


@dataclass(frozen=True)
class GroupSpend:
    key: str  # the service_name or the account_id
    cost_usd: Decimal
    days: int  # days with published cost


@dataclass(frozen=True)
class Spend:
    """Exact spend over [date_from, date_to] per service or per account, and the days of that range
    whose data is not complete yet for the tenant (`_incomplete_days`)."""

    date_from: dt.date
    date_to: dt.date
    groups: list[GroupSpend]  # by key
    incomplete: list[dt.date]

    @property
    def total_usd(self) -> Decimal:
        return sum((g.cost_usd for g in self.groups), Decimal(0))


def spend(
    wh: Warehouse,
    tenant: str | None,
    date_from: dt.date,
    date_to: dt.date,
    *,
    group_by: str = "service",
    accounts: Iterable[str] = (),
    services: Iterable[str] = (),
    cost: str = "billed",
) -> Spend:
    """Spend of the tenant's accounts from stage 2, summed exactly per group; `accounts` and
    `services` narrow it (services compare by letters and digits, case-insensitively)."""
    where: list[str] = ["s.usage_date BETWEEN ? AND ?"]
    params: list[Any] = [date_from, date_to]
    if wanted := sorted(set(accounts)):
        where.append(f"s.account_id IN ({', '.join('?' * len(wanted))})")
        params += wanted
    keys = {service_key(s) for s in services}
    status = f"""SELECT usage_date, bool_and(COALESCE(data_complete, false)) AS complete
                 FROM {DAILY_ACCOUNT.name} GROUP BY usage_date"""
    tables = [ACCOUNT_SERVICE_DAY.name, DAILY_ACCOUNT.name]
    with _lake(wh, tenant, tables) as con:
        if keys:  # the spellings in the lake of the services asked for (none: nothing matches)
            names = sorted(n for n in _column(con, "service_name") if service_key(n) in keys)
            where.append(f"s.service_name IN ({', '.join('?' * len(names))})" if names else "false")
            params += names
        key = _GROUP_KEYS[group_by]
        sql = f"""SELECT s.{key} AS key, sum({_COST_COLUMNS[cost]}) AS cost_usd,
                         CAST(count(DISTINCT s.usage_date) AS BIGINT) AS days
                  FROM {ACCOUNT_SERVICE_DAY.name} AS s WHERE {" AND ".join(where)}
                  GROUP BY s.{key} ORDER BY s.{key}"""
        groups = [GroupSpend(**r) for r in _rows(con, sql, params)]
        complete = {r["usage_date"]: r["complete"] for r in _rows(con, status, [])}
    return Spend(date_from, date_to, groups, _incomplete_days(date_from, date_to, complete))


def _incomplete_days(date_from: dt.date, date_to: dt.date, complete: dict[dt.date, bool]) -> list[dt.date]:
    """The days of the range whose data is not complete for the tenant: published but inside the
    completeness lag, or after its last published day. A day with nothing billed between its
    first and last published days is complete (nothing was spent), and days before the first are
    not waiting for data."""
    if not complete:
        return []
    last = max(complete)
    every = (date_from + dt.timedelta(days=i) for i in range((date_to - date_from).days + 1))
    return [d for d in every if (d in complete and not complete[d]) or d > last]


def _column(con: duckdb.DuckDBPyConnection, column: str) -> list[str]:
    """The distinct values of a column of the tenant's stage 2."""
    sql = f"SELECT DISTINCT {column} FROM {ACCOUNT_SERVICE_DAY.name} WHERE {column} IS NOT NULL"
    return [str(r[column]) for r in _rows(con, sql, [])]


# Spaces and punctuation: what people write differently for one service ("Amazon S3", "amazon-s3")
_LOOSE = frozenset("ZP")


def simple_lower(text: str) -> str:
    """Lower case one character for one, as DuckDB's `lower` (which publishes service names) does:
    Python's own maps "İ" to "i" and a combining dot, which no published name holds.

    >>> simple_lower("İzmir ẞ"), len(simple_lower("İİ"))
    ('izmir ß', 2)
    """
    return "".join(ch.lower()[0] for ch in text)


def service_key(service: str) -> str:
    """How services are compared: the name composed (Unicode NFC) and lower-cased, without spaces and
    punctuation, so that "Amazon S3", "amazon-s3" and "AmazonS3" are one service, and so is "Stockage
    Données" however its accent was typed. Everything else stays: a symbol ("C++" is not "C", "cloud ☁
    storage" not "cloud storage"), an emoji, an invisible character (a look-alike of a service's name
    is another service); a name of punctuation alone is compared whole.

    >>> [service_key(s) for s in ("Amazon S3", "amazon_s3", "Amazon\u200bS3", "Donne\u0301es", "İzmir")]
    ['amazons3', 'amazons3', 'amazon\u200bs3', 'données', 'izmir']
    >>> service_key("!!!"), service_key("C++") != service_key("C")
    ('!!!', True)
    """
    text = simple_lower(unicodedata.normalize("NFC", service))
    key = "".join(ch for ch in text if unicodedata.category(ch)[0] not in _LOOSE)
    return key or text


_COST_COLUMNS = {"billed": "s.total_cost_usd", "effective": "s.effective_cost_usd"}
_GROUP_KEYS = {"account": "account_id", "service": "service_name"}


def daily_costs(
    wh: Warehouse, tenant: str | None, filters: DailyCostFilters | None = None, page: Page | None = None
) -> PageOf[DailyCost]:
    """Daily cost per (usage_date, account) or per (usage_date, service), in that order.

    Summed exactly from stage 2, which the quality gate proves equal to stage 3 per account and day;
    `data_complete` comes from stage 3.
    """
    filters = filters or DailyCostFilters()
    key = _GROUP_KEYS[filters.group_by]
    keyset = Keyset(f"daily_costs/{filters.group_by}", ("usage_date", key))
    sql = f"""SELECT usage_date, {key}, sum({_COST_COLUMNS[filters.cost]}) AS cost_usd,
                     CAST(sum(s.event_count) AS BIGINT) AS event_count,
                     bool_and(COALESCE(d.data_complete, false)) AS data_complete
              FROM {ACCOUNT_SERVICE_DAY.name} AS s
              LEFT JOIN {DAILY_ACCOUNT.name} AS d USING (account_id, usage_date)
              WHERE {{where}} GROUP BY usage_date, {key} ORDER BY {{order}} LIMIT ?"""

    def row(r: dict[str, Any]) -> DailyCost:
        return DailyCost(**({"account_id": None, "service_name": None} | r))

    tables = [ACCOUNT_SERVICE_DAY.name, DAILY_ACCOUNT.name]
    return _page(wh, tenant, tables, sql, filters, page, keyset, row)


def account_service_costs(
    wh: Warehouse, tenant: str | None, filters: CostFilters | None = None, page: Page | None = None
) -> PageOf[AccountServiceCost]:
    """Stage 2 rows, by (usage_date, account_id, service_name)."""
    keyset = Keyset("account_service_costs", ("usage_date", "account_id", "service_name"))
    sql = f"""SELECT usage_date, account_id, service_name, total_cost_usd, effective_cost_usd, event_count
              FROM {ACCOUNT_SERVICE_DAY.name} WHERE {{where}} ORDER BY {{order}} LIMIT ?"""
    filters = filters or CostFilters()
    tables = [ACCOUNT_SERVICE_DAY.name]
    return _page(wh, tenant, tables, sql, filters, page, keyset, lambda r: AccountServiceCost(**r))


# The orders anomalies can be listed in: each a total order (the series and the kind break ties).
_ANOMALY_ORDERS = {
    "date": ("usage_date", "account_id", "service_name", "kind"),
    "-date": ("-usage_date", "account_id", "service_name", "kind"),
    "-impact": ("-size", "usage_date", "account_id", "service_name", "kind"),
}
ANOMALY_SORTS = tuple(_ANOMALY_ORDERS)


def anomalies(
    wh: Warehouse,
    tenant: str | None,
    filters: AnomalyFilters | None = None,
    page: Page | None = None,
    sort: str = "date",
) -> PageOf[Anomaly]:
    """Detected anomalies, by `sort`: `date` (oldest first, then account and service), `-date` (newest
    first) or `-impact` (the largest dollar impact, up or down, first)."""
    if sort not in _ANOMALY_ORDERS:
        raise InputError(f"unknown sort {sort!r}: choose one of {', '.join(ANOMALY_SORTS)}")
    size = {"size": "abs(impact_usd)"}
    keyset = Keyset(f"anomalies/{sort}", _ANOMALY_ORDERS[sort], size, ("size",))
    columns = ", ".join(f.name for f in fields(Anomaly))
    sql = f"""SELECT {columns}, abs(impact_usd) AS size FROM {COST_ANOMALIES.name} WHERE {{where}}
              ORDER BY {{order}} LIMIT ?"""
    filters = filters or AnomalyFilters()
    return _page(wh, tenant, [COST_ANOMALIES.name], sql, filters, page, keyset, _anomaly)


def all_anomalies(wh: Warehouse, tenant: str | None) -> pa.Table:
    """Every anomaly row with every column, as Arrow, for bulk consumers (the explanation index)."""
    sql = f"SELECT * FROM {COST_ANOMALIES.name} ORDER BY usage_date, account_id, service_name"
    with _lake(wh, tenant, [COST_ANOMALIES.name]) as con:
        return to_arrow(con, sql)


def _anomaly(row: dict[str, Any]) -> Anomaly:
    parsed = tuple(Contributor(*values) for values in contributor_values(row["contributors"]))
    fields_only = {k: v for k, v in row.items() if k != "size"}  # a sort key, still needed for paging
    return Anomaly(**(fields_only | {"contributors": parsed}))


def _page(
    wh: Warehouse,
    tenant: str | None,
    tables: Sequence[str],
    sql: str,
    filters: CostFilters,
    page: Page | None,
    keyset: Keyset,
    make: Callable[[dict[str, Any]], T],
) -> PageOf[T]:
    """Run a listing's `sql` (with `{where}`, `{order}` and a `LIMIT ?` to fill) for one page."""
    page = page or Page()
    where, params = filters.conditions()
    if page.after is not None:
        after, key = keyset.after(page.after)
        where, params = [*where, after], [*params, *key]
    text = sql.format(where=" AND ".join(where) or "true", order=keyset.order_by)
    rows = _select(wh, tenant, tables, text, [*params, page.limit + 1])  # one more: is there a next page?
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return PageOf([make(r) for r in rows], keyset.position(rows[-1]) if more else None)


def _select(
    wh: Warehouse, tenant: str | None, tables: Sequence[str], sql: str, params: list[Any]
) -> list[dict[str, Any]]:
    with _lake(wh, tenant, tables) as con:
        return _rows(con, sql, params)


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    cursor = con.execute(sql, params)
    names = [d[0] for d in cursor.description or []]
    return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]


@dataclass
class _Session:
    wh: Warehouse
    tenant: str | None
    tables: frozenset[str]
    con: duckdb.DuckDBPyConnection | None = None


_session: ContextVar[_Session | None] = ContextVar("costlake_readers_session", default=None)
# What answering a question reads (`rag/explain.py` opens its session with these).
QUESTION_TABLES = (ACCOUNT_SERVICE_DAY.name, DAILY_ACCOUNT.name, DIM_ACCOUNT.name, DIM_SERVICE.name,
                   COST_ANOMALIES.name)  # fmt: skip


@contextmanager
def session(wh: Warehouse, tenant: str | None, tables: Iterable[str]) -> Iterator[None]:
    """Readers called inside, for this warehouse and tenant and among `tables`, share one connection
    over one view of the lake, opened on first use: they see the same snapshots, and a question that
    calls several readers opens the lake once."""
    opened = _Session(wh, tenant, frozenset(tables))
    token = _session.set(opened)
    try:
        yield
    finally:
        _session.reset(token)
        if opened.con is not None:
            opened.con.close()


@contextmanager
def _lake(wh: Warehouse, tenant: str | None, tables: Sequence[str]) -> Iterator[duckdb.DuckDBPyConnection]:
    shared = _session.get()
    if shared is not None and shared.wh is wh and shared.tenant == tenant and shared.tables >= set(tables):
        if shared.con is None:
            wh.refresh()
            shared.con = open_lake(wh, tenant=tenant, tables=shared.tables)
        yield shared.con
        return
    wh.refresh()  # another process may have committed since this Warehouse last looked
    con = open_lake(wh, tenant=tenant, tables=tables)
    try:
        yield con
    finally:
        con.close()
