"""SQL over the lake: every table is a DuckDB view over its current data files (or a past run's),
for every tenant (the operator's view) or cut down to one tenant's accounts.

The tenant cut is written here once, and both `costlake query --tenant` and the readers
(catalog/readers.py) go through it. Ownership is dim_account as it is now, whatever `as_of`: moving an
account to another tenant moves its history with it. Under a tenant,

* a table with an `account_id` column keeps the rows of the tenant's accounts (dim_account: the
  tenant's accounts themselves);
* a dimension without one keeps the keys the tenant's published rows use (`SCOPE_LINKS`);
* a table that carries no account (publish_log, quarantine, ingest_batches) is empty.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import duckdb
import pyarrow as pa

from costlake.duck import connect, interruptible, sql_ident, sql_string, table_scan, to_arrow
from costlake.errors import OUT_OF_MEMORY_HINT, InputError, first_line
from costlake.lake.batches import registered_batches
from costlake.lake.manifest import latest_manifest, manifest_for
from costlake.lake.warehouse import Warehouse
from costlake.tables import (
    ACCOUNT_SERVICE_DAY,
    COST_ANOMALIES,
    DAILY_ACCOUNT,
    DIM_ACCOUNT,
    DIM_PRICING_MODEL,
    DIM_REGION,
    DIM_SERVICE,
    NORMALIZED,
    PUBLISH_LOG,
    TABLES,
    TableDef,
)
from costlake.tables import INGEST_BATCHES as REGISTRY

# The stage tables change together in a run: readers see them as of the last finished run.
RUN_TABLES = frozenset({NORMALIZED.name, ACCOUNT_SERVICE_DAY.name, DAILY_ACCOUNT.name})

# Read through the registry (lake/batches.py), which also counts a batch whose row is not written yet.
INGEST_BATCHES = REGISTRY.name

# Under a tenant, the relation of the tenant's account ids (visible to `query --tenant` too).
TENANT_ACCOUNTS = "tenant_accounts"
# A dimension without an account: (its key, the published table whose rows of the tenant's accounts
# say which keys the tenant uses). That table's view is already cut to the tenant, and comes earlier
# in TABLES, so it exists when the dimension's view is created.
SCOPE_LINKS: dict[str, tuple[str, str]] = {
    DIM_SERVICE.name: ("service_name", ACCOUNT_SERVICE_DAY.name),
    DIM_REGION.name: ("region", NORMALIZED.name),
    DIM_PRICING_MODEL.name: ("pricing_model", NORMALIZED.name),
}


class UnknownTenant(InputError):
    """A tenant that owns no account in dim_account."""


def tenant_accounts(wh: Warehouse, tenant: str) -> list[str]:
    """The accounts `tenant` owns, sorted, from dim_account as it is now. A tenant that owns none is
    unknown (`UnknownTenant`): nobody can tell it from a misspelt one."""
    owners = wh.read_rows(DIM_ACCOUNT).select(["account_id", "tenant_id"]).to_pylist()
    accounts = sorted({r["account_id"] for r in owners if r["tenant_id"] == tenant and r["account_id"]})
    if not accounts:
        shown = tenant if len(tenant) <= 64 else tenant[:64] + "..."  # one readable line, whatever was typed
        raise UnknownTenant(f"unknown tenant {shown!r}")
    return accounts


def tenant_scope(tdef: TableDef) -> str | None:
    """The condition that cuts `tdef` down to one tenant, or None when a tenant sees none of it.

    >>> tenant_scope(TABLES["daily_account_cost"])
    'account_id IN (SELECT account_id FROM tenant_accounts)'
    >>> tenant_scope(TABLES["dim_region"])
    'region IN (SELECT region FROM normalized_billing_events)'
    >>> tenant_scope(TABLES["publish_log"]) is None
    True
    """
    if "account_id" in tdef.column_names:
        return f"account_id IN (SELECT account_id FROM {TENANT_ACCOUNTS})"
    link = SCOPE_LINKS.get(tdef.name)
    if link is None:
        return None
    key, table = link
    return f"{key} IN (SELECT {key} FROM {table})"


def snapshot_view(wh: Warehouse, as_of: str | None = None) -> dict[str, int | None]:
    """The snapshot each table is read at: `as_of` a run's manifest for every table (the anomalies
    as the run's own detection left them, where it had one: the manifest is written before it), or
    by default the latest finished run's for the stage tables and the current one for the rest
    (None)."""
    if as_of is not None:
        manifest = manifest_for(wh, as_of)
        view = {name: manifest.snapshots.get(name) for name in TABLES}
        # The last snapshot of that detection's commit (a commit that replaces days makes two): a
        # later `costlake anomalies` that reflects the same run is another command's, not the run's.
        detected = [
            s.snapshot_id
            for s in wh.snapshots(COST_ANOMALIES)
            if s.properties.get("source_run") == manifest.run_id and s.properties.get("by_run") == "true"
        ]
        if detected:
            view[COST_ANOMALIES.name] = detected[-1]
        return view | {PUBLISH_LOG.name: manifest.log_snapshot_id}
    latest = latest_manifest(wh)
    if latest is None:  # no run finished yet: whatever a crashed first run committed stays unseen
        return dict.fromkeys(RUN_TABLES)
    return {name: snap for name, snap in latest.snapshots.items() if name in RUN_TABLES}


def open_lake(
    wh: Warehouse,
    as_of: str | None = None,
    *,
    tenant: str | None = None,
    tables: Iterable[str] | None = None,
    sealed_for: str | None = None,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with one view per table, plus `ingest_batches` from the batch registry.

    `tenant` cuts every view down to that tenant (see the module docstring; `UnknownTenant` if it owns
    no account); None is the operator's view of every tenant. `tables` limits the views to those
    names (plus what a tenant's dimension views need), which saves planning the other tables' files.
    `sealed_for` is SQL from a user: the connection is sealed for it (`seal`) before it is returned.
    """
    everything = set(TABLES)
    wanted = everything if tables is None else set(tables)
    if wanted - everything:
        raise ValueError(f"no such table(s): {', '.join(sorted(wanted - everything))}")
    wh.ensure_tables()
    con = connect(wh.settings, ordered=True)
    readable: list[str] = []
    try:
        if sealed_for is not None:
            _one_select(con, sealed_for)
        if tenant is not None:
            wanted |= {SCOPE_LINKS[name][1] for name in wanted if name in SCOPE_LINKS}
            accounts = pa.table({"account_id": pa.array(tenant_accounts(wh, tenant), pa.string())})
            con.register(TENANT_ACCOUNTS, accounts)
        view = snapshot_view(wh, as_of)
        for tdef in TABLES.values():
            if tdef.name not in wanted or tdef is REGISTRY:
                continue
            scope = tenant_scope(tdef) if tenant is not None else None
            snapshot = view.get(tdef.name)
            # A table in the view without a snapshot had no data yet when that run finished.
            hidden = (tdef.name in view and snapshot is None) or (tenant is not None and scope is None)
            files = [] if hidden else wh.data_files(tdef, snapshot_id=snapshot)
            readable += files
            if files:
                where = f" WHERE {scope}" if scope is not None else ""
                # The table's columns whatever the files hold: a file written before a column was
                # appended reads it as NULL.
                scan = table_scan(files, tdef.arrow_schema())
                con.execute(f"CREATE VIEW {tdef.name} AS SELECT * FROM ({scan}) AS {tdef.name}_files{where}")
            else:
                con.register(f"{tdef.name}__empty", tdef.arrow_schema().empty_table())
                con.execute(f"CREATE VIEW {tdef.name} AS SELECT * FROM {tdef.name}__empty")
        if INGEST_BATCHES in wanted:  # batches carry no account: a tenant sees none
            batches = _batches(wh, as_of) if tenant is None else REGISTRY.arrow_schema().empty_table()
            con.register(INGEST_BATCHES, batches)
        if sealed_for is not None:
            seal(con, sealed_for, readable, copy_in=tenant is not None)
    except BaseException:
        con.close()
        raise
    return con


def _batches(wh: Warehouse, as_of: str | None) -> pa.Table:
    watermark = manifest_for(wh, as_of).batch_seq if as_of is not None else None
    rows = [b.__dict__ for b in registered_batches(wh) if watermark is None or b.batch_seq <= watermark]
    return pa.Table.from_pylist(rows, schema=REGISTRY.arrow_schema())


def run_query(wh: Warehouse, sql: str, as_of: str | None = None, tenant: str | None = None) -> pa.Table:
    """The result of one SELECT over the lake (as of a past run, if given; cut to a tenant, if
    given), as Arrow. The connection is sealed for the SQL (`seal`): it can neither write nor read
    outside the lake, and `--tenant` cannot be escaped by reading the shared data files by path."""
    try:
        con = open_lake(wh, as_of, tenant=tenant, sealed_for=sql)
    except duckdb.Error as exc:
        raise InputError(f"query failed: {first_line(exc)}") from None
    try:
        return interruptible(con, lambda: to_arrow(con, sql))  # Ctrl-C stops a long query at once
    except duckdb.OutOfMemoryException as exc:
        raise InputError(f"query failed: {first_line(exc)}; {OUT_OF_MEMORY_HINT}") from None
    except duckdb.Error as exc:
        raise InputError(f"query failed: {first_line(exc)}") from None
    finally:
        con.close()


def _one_select(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    statements = con.extract_statements(sql)
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        kinds = ", ".join(str(s.type).rsplit(".", 1)[-1] for s in statements) or "nothing"
        if len(statements) == 1 and statements[0].type == duckdb.StatementType.MULTI:
            # DuckDB makes a PIVOT without its values a type of its own first, then the SELECT
            raise InputError(
                "query runs one SELECT statement over the lake, and this one needs more (a PIVOT "
                "must list its values: PIVOT t ON c IN ('a', 'b') USING sum(x))"
            )
        raise InputError(f"query runs one SELECT statement over the lake, not {kinds}")


def seal(con: duckdb.DuckDBPyConnection, sql: str, readable: list[str], *, copy_in: bool) -> None:
    """Lock the connection down before it runs `sql`: no file access but reading the lake's data
    files `readable` or, with `copy_in` (a tenant), first copy the tables the SQL names into memory
    and allow no file access at all, since the data files hold every tenant's rows. The
    configuration is locked, so the SQL cannot lift either."""
    if copy_in:
        # The lake's views (a registered Arrow table is a temporary view, in memory already)
        listed = "SELECT database_name, view_name FROM duckdb_views() WHERE NOT internal AND NOT temporary"
        views = sorted(con.execute(listed).fetchall())
        # The tables the SQL may name (a word match errs on copying more) are copied into memory
        # under a name of their own, all before any view goes (a tenant's view may read another)
        named = [(db, name) for db, name in views if re.search(rf"\b{name}\b", sql, re.IGNORECASE)]
        for database, name in named:
            table = f"{sql_ident(database)}.main.{name}"
            con.execute(f"CREATE TABLE {table}__copy AS SELECT * FROM {table}")
        # Then the views go (their text lists the data files of every tenant's days and batches,
        # which `duckdb_views()` would show) and the copies take their names: `x`, `main.x` and
        # `memory.main.x` all name the tenant's copy.
        for database, name in views:
            con.execute(f"DROP VIEW {sql_ident(database)}.main.{name}")
        for database, name in named:
            con.execute(f"ALTER TABLE {sql_ident(database)}.main.{name}__copy RENAME TO {name}")
        readable = []
    if readable:
        con.execute("SET allowed_paths = [" + ", ".join(sql_string(f) for f in sorted(set(readable))) + "]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
