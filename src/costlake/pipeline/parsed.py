"""What `ingest` finds in a parsed file (counts, reasons, repeated ids, unknown deletes, billing
periods) and its rows written as Parquet: the part of an ingestion between the source's parse and
the commits (pipeline/ingest.py)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from costlake.duck import PARQUET_FORMAT, interruptible, sql_string, table_scan
from costlake.errors import InputError
from costlake.lake.warehouse import Warehouse
from costlake.pipeline.deliveries import PERIOD_FORMATS
from costlake.pipeline.stage1_normalize import LIVE
from costlake.tables import RAW

log = logging.getLogger("costlake.pipeline.ingest")  # the ingest's own lines


@dataclass
class IngestResult:
    path: Path
    batch_id: str
    source_format: str
    accepted: int = 0
    quarantined: int = 0
    skipped: bool = False
    reasons: list[tuple[str, int]] = field(default_factory=list)
    # Accepted rows whose event_id an earlier accepted row of the same file already has: the total order
    # (ingestion_ts, batch, row) still picks one winner, but a file should not repeat an event.
    duplicates: int = 0
    # Accepted delete rows of events no raw row has yet: kept, so an older version arriving later
    # stays deleted, but they remove nothing now.
    unknown_deletes: int = 0
    # The batch_id of the reading this batch replaces (`reparse`), else "".
    replaces: str = ""
    # Period formats: the (billing account, first day) of each billing period the batch delivers.
    periods: frozenset[tuple[str, str]] = frozenset()
    # Earlier files of the same `ingest` of this format whose periods this batch restates, each period
    # being replaced whole by its latest delivery: their rows of those periods no longer count.
    restates: list[Path] = field(default_factory=list)
    # The delivery in parts the batch belongs to (pipeline/deliveries.py), and its first part's batch_id
    delivery_group: int | None = None
    first_part: str = ""
    # The first batch of a later delivery that replaced this part's delivery for a period it delivers
    superseded_by: str = ""
    # The batch is in a delivery short of the parts its command declared: its rows never count
    short_delivery: bool = False


def check_parsed(
    con: duckdb.DuckDBPyConnection, wh: Warehouse, path: Path, fmt: str, result: IngestResult
) -> None:
    """What the command reports of a parsed file, into `result`; refuses an empty re-read."""
    result.accepted = _count(con, "accepted")
    result.quarantined = _count(con, "rejected")
    result.reasons = _top_reasons(con)
    result.duplicates = _duplicates(con, path)
    result.unknown_deletes = _unknown_deletes(con, wh, path)
    result.periods = _periods(con) if fmt in PERIOD_FORMATS else frozenset()
    _refuse_an_empty_reread(result)


def _periods(con: duckdb.DuckDBPyConnection) -> frozenset[tuple[str, str]]:
    """The (billing account, first day) of each billing period the accepted rows deliver."""
    rows = con.execute(
        """SELECT DISTINCT billing_account_id, CAST(billing_period_start AS VARCHAR) FROM accepted
           WHERE billing_period_start IS NOT NULL"""
    ).fetchall()
    return frozenset((str(account), str(start)) for account, start in rows)


def _unknown_deletes(con: duckdb.DuckDBPyConnection, wh: Warehouse, path: Path) -> int:
    """Accepted delete rows whose event has no version in the file or in raw (the command reports them)."""
    deletes = "SELECT event_id FROM accepted WHERE op = 'delete'"
    if not con.execute(f"SELECT count(*) FROM ({deletes})").fetchall()[0][0]:
        return 0
    known = f"SELECT event_id FROM accepted WHERE {LIVE}"
    files = wh.data_files(RAW)
    if files:
        known += (
            f" UNION ALL SELECT event_id FROM ({table_scan(files, RAW.arrow_schema())}) AS r WHERE {LIVE}"
        )
    unknown = f"SELECT count(*) FROM ({deletes}) AS d WHERE event_id NOT IN ({known})"
    found = int(con.execute(unknown).fetchall()[0][0])
    what = (
        "delete row(s) retract events the lake has no version of; kept, they remove nothing now, and a "
        "version older than the delete arriving later stays deleted"
    )
    return _logged(path, found, "unknown_deletes", what)


def _duplicates(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    """Accepted rows repeating an earlier accepted row's event_id (the command reports them)."""
    found = int(con.execute("SELECT count(*) - count(DISTINCT event_id) FROM accepted").fetchall()[0][0])
    what = "row(s) repeat an event_id of an earlier row in the file; the latest by (ingestion_ts, row) wins"
    return _logged(path, found, "duplicates", what)


def _logged(path: Path, found: int, field_name: str, what: str) -> int:
    """`found`, logged at info when there are any: the command says so to the user, the log keeps it
    for machines (`field_name` in the record's fields)."""
    if found:
        log.info("%s: %d %s", path, found, what, extra={"file": str(path), field_name: found})
    return found


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])


def _top_reasons(con: duckdb.DuckDBPyConnection) -> list[tuple[str, int]]:
    """The ten most frequent kinds of problem among the rejected rows, each with its count. Values
    (quoted by `quote_text`, a quote inside doubled) and sizes vary inside reasons: they are blanked
    before a row's reasons are told apart, so that a value holding `; ` or a quote is never read as a
    reason of its own."""
    rows = con.execute(
        r"""SELECT unnest(string_split(
                      regexp_replace(regexp_replace(reason, '''(?:[^'']|'''')*''', '…', 'g'),
                                     ' is [0-9]+ (bytes|characters)', ' is … \1', 'g'),
                      '; ')) AS r,
                  count(*) AS n
           FROM rejected GROUP BY r ORDER BY n DESC, r LIMIT 10"""
    ).fetchall()
    return [(str(r), int(n)) for r, n in rows]


def copy_rows(con: duckdb.DuckDBPyConnection, table: str, out_dir: Path, *, ordered: bool = True) -> str:
    """One Parquet file of the table, its rows in file order (the ingest's connection keeps insertion
    order) unless not `ordered`. The raw batch is written unordered: each raw row carries its place in
    the file (`source_row`), every reader that needs an order asks for it, and DuckDB then encodes the
    row groups on every thread (10M rows in 4.4 s instead of 5.8 s). Quarantine keeps file order, for
    whoever reads it to mend the file."""
    # A fresh name per attempt: a repeated ingestion never overwrites a file an old snapshot references.
    target = out_dir / f"part-{uuid.uuid4().hex}.parquet"
    sql = f"COPY (SELECT * FROM {table}) TO {sql_string(str(target))} ({PARQUET_FORMAT})"
    if ordered:
        interruptible(con, lambda: con.execute(sql))  # Ctrl-C stops the write at once
        return str(target)
    con.execute("SET preserve_insertion_order = false")
    try:
        interruptible(con, lambda: con.execute(sql))
    finally:  # the next file's rows are numbered by their order
        con.execute("SET preserve_insertion_order = true")
    return str(target)


def _refuse_an_empty_reread(result: IngestResult) -> None:
    """A re-read must accept a row: its rows are what replaces the earlier reading."""
    if result.replaces and not result.accepted:
        why = result.reasons[0][0] if result.reasons else "the file has no rows"
        raise InputError(
            f"{result.path}: the current parser accepts no row of this file ({result.quarantined:,} "
            f"would be quarantined, e.g. {why}); nothing recorded, batch {result.replaces} stays in force"
        )
