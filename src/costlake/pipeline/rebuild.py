"""Rebuild a set of days through all three stages from raw, gate them, and stage the files.

Nothing here commits: `run.py` decides what to publish, and `audit.py` uses the same rebuild to
replay a past run. Raw is read as of a batch watermark, so a replay sees exactly the batches the
original run saw.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from costlake.engines import Engine
from costlake.lake.batches import Batch, incomplete_deliveries
from costlake.lake.faults import crash_point
from costlake.lake.filters import at_most
from costlake.lake.fingerprint import PartitionFingerprint, fingerprint_files
from costlake.lake.warehouse import Warehouse
from costlake.logs import current
from costlake.pipeline import gate, stage1_normalize, stage2_account_service_day, stage3_account_day
from costlake.tables import ACCOUNT_SERVICE_DAY, DAILY_ACCOUNT, NORMALIZED, RAW, TableDef

STAGES: tuple[tuple[TableDef, str], ...] = (
    (NORMALIZED, "s1"),
    (ACCOUNT_SERVICE_DAY, "s2"),
    (DAILY_ACCOUNT, "s3"),
)


@dataclass
class Rebuilt:
    """What a rebuild produced, per stage table and day."""

    days: list[dt.date]
    files: dict[str, dict[dt.date, list[str]]]
    fingerprints: dict[str, dict[dt.date, PartitionFingerprint]]
    findings: list[gate.Finding]
    held_back: set[dt.date]  # failing days plus the days tied to them

    def batch_ids(self, day: dt.date) -> str:
        fp = self.fingerprints[NORMALIZED.name].get(day)
        return fp.batch_ids if fp else ""


def day_of_file(path: str, column: str = "usage_date") -> dt.date:
    """The single partition value a staged file holds (checked again at commit)."""
    meta = pq.read_metadata(path)
    index = meta.schema.names.index(column)
    value = meta.row_group(0).column(index).statistics.min
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def rebuild(
    wh: Warehouse,
    engine: Engine,
    days: list[dt.date],
    *,
    watermark: int,
    run_id: str,
    published_at: dt.datetime,
    staging: dict[str, Path],
    batches: Sequence[Batch],
    lag_hours: int | None = None,
) -> Rebuilt:
    """Compute stages 1-3 for `days` from raw batches up to `watermark`, run the gate, write files.
    `lag_hours` overrides the completeness lag (an audit replays with the one the run used)."""
    settings = wh.settings
    raw_files = wh.data_files(RAW, row_filter=at_most("batch_seq", watermark)) if watermark else []
    engine.register_files("raw_asof", raw_files, RAW.arrow_schema())
    engine.register_arrow("days", pa.table({"usage_date": pa.array(sorted(days), pa.date32())}))
    every_day = not engine.fetch(stage1_normalize.outside_days_sql("raw_asof", "days")).num_rows
    lag = settings.completeness_lag_hours if lag_hours is None else lag_hours
    short = incomplete_deliveries(list(batches), watermark)
    steps = _stage_steps(run_id, published_at, lag, every_day, short)
    progress = current()  # a step per table built, the gate, and a step per stage's files
    progress.start(f"rebuilding {len(days):,} day(s)", total=len(steps) + 1 + len(STAGES), unit="steps")
    made: set[str] = set()
    for name, sql in steps:
        if name in DEFINED:
            engine.define(name, sql)
        else:
            engine.materialize(name, sql)
        for spent in SPENT.get(name, ()):
            if spent in made:
                engine.release(spent)
        made.add(name)
        progress.advance()
    engine.materialize("raw_days", gate.RAW_DAYS_SQL)
    found = engine.fetch(
        gate.gate_sql(
            currency=settings.currency, negative_total=settings.negative_daily_total, dialect=engine.dialect
        )
    )
    findings = [
        gate.Finding(r["usage_date"], r["check_name"], r["severity"], r["detail"]) for r in found.to_pylist()
    ]
    failed = {f.usage_date for f in findings if f.severity == "error"}
    progress.advance()
    held_back = _tied_days(wh, engine, days, failed) if failed else set()
    crash_point("computed")
    files: dict[str, dict[dt.date, list[str]]] = {}
    fingerprints: dict[str, dict[dt.date, PartitionFingerprint]] = {}
    for tdef, name in STAGES:
        written = engine.write_partitions(f"SELECT * FROM {name}", staging[tdef.name], "usage_date")
        by_day: dict[dt.date, list[str]] = defaultdict(list)
        for path in written:
            by_day[day_of_file(path)].append(path)
        files[tdef.name] = dict(by_day)
        fingerprints[tdef.name] = fingerprint_files(tdef, written, engine.settings)
        progress.advance()
    crash_point("files_written")
    return Rebuilt(sorted(days), files, fingerprints, findings, held_back)


# Stage 1 is the winners dated on the rebuilt days plus the period rows: a filter of two tables already
# held, read again by each reader instead of held a second time (at 10M events, a copy of every event);
# `raw_ids` and `winners` are filters of the ranked rows the same way.
DEFINED = frozenset({"raw_ids", "winners", "s1"})
# Relations no later step reads once the named one is made, freed then: the ids of every event of the
# rebuilt days (at 10M events, 10M strings) serve only to pick the rows `ranked` ranks.
SPENT: dict[str, tuple[str, ...]] = {"ranked": ("day_events",)}


def _stage_steps(
    run_id: str, published_at: dt.datetime, lag: int, every_day: bool, short: Sequence[int] = ()
) -> tuple[tuple[str, str], ...]:
    """(name, SQL) of each relation the rebuild makes, in order: stages 1-3 from `raw_asof`; those in
    `DEFINED` are views, the others materialised. `every_day`: the rebuilt days hold every raw day
    (`stage1_normalize.outside_days_sql` over `raw_asof`: no row of an older reading either).
    `short`: the batches of deliveries short of their declared parts, which do not count yet."""
    # Only the latest reading of each delivery counts (a re-read replaces the earlier reading).
    raw = stage1_normalize.counted_sql("raw_asof", "readings")
    return (
        ("readings", stage1_normalize.readings_sql("raw_asof", short)),
        *stage1_normalize.steps(raw, "days", every_day=every_day),
        ("s2", stage2_account_service_day.account_service_day_sql("s1")),
        ("account_ingestion", stage3_account_day.account_ingestion_sql(raw)),
        ("invoiced", stage3_account_day.invoiced_sql("s1")),
        ("s3", stage3_account_day.account_day_sql(
            "s2", "account_ingestion", "invoiced", lag_hours=lag, run_id=run_id, published_at=published_at
        )),
    )  # fmt: skip


def _tied_days(wh: Warehouse, engine: Engine, days: list[dt.date], failed: set[object]) -> set[dt.date]:
    """The failing days plus every day tied to one: a day an event moves from or to, or a day of the
    same restated billing period. Publishing one without the other would drop or double-count it."""
    engine.register_files("s1_before", wh.data_files(NORMALIZED, dates=days), NORMALIZED.arrow_schema())
    link = (
        "CASE WHEN billing_period_start IS NULL THEN 'e:' || event_id ELSE 'p:' || source_format || '|' "
        "|| billing_account_id || '|' || CAST(billing_period_start AS STRING) END"
    )
    links = engine.fetch(
        f"""WITH links AS (
                SELECT usage_date, {link} AS link FROM s1
                UNION SELECT usage_date, {link} AS link FROM s1_before
            )
            SELECT link, usage_date FROM links
            WHERE link IN (SELECT link FROM links GROUP BY link HAVING count(DISTINCT usage_date) > 1)"""
    ).to_pylist()
    groups: dict[str, set[dt.date]] = defaultdict(set)
    for row in links:
        groups[row["link"]].add(row["usage_date"])
    held = {d for d in failed if isinstance(d, dt.date)}
    grew = True
    while grew:  # grow to the connected days; groups are few, this settles in a few passes
        grew = False
        for tied in groups.values():
            if tied & held and not tied <= held:
                held |= tied
                grew = True
    return held
