"""Rebuild a set of days through all three stages from raw, gate them, and stage the files.

Nothing here commits: `run.py` decides what to publish, and `audit.py` uses the same rebuild to
replay a past run. Raw is read as of a batch watermark, so a replay sees exactly the batches the
original run saw.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from costlake.engines import Engine
from costlake.faults import crash_point
from costlake.lake.filters import at_most
from costlake.lake.fingerprint import PartitionFingerprint, fingerprint_files
from costlake.lake.schemas import ACCOUNT_SERVICE_DAY, DAILY_ACCOUNT, NORMALIZED, RAW, TableDef
from costlake.lake.warehouse import Warehouse
from costlake.pipeline import gate, stage1_normalize, stage2_account_service_day, stage3_account_day

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

    def failed_days(self) -> set[dt.date]:
        return {f.usage_date for f in self.findings if f.severity == "error"}  # type: ignore[misc]

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
) -> Rebuilt:
    """Compute stages 1-3 for `days` from raw batches up to `watermark`, run the gate, write files."""
    settings = wh.settings
    raw_files = wh.data_files(RAW, row_filter=at_most("batch_seq", watermark)) if watermark else []
    engine.register_files("raw_asof", raw_files, RAW.arrow_schema())
    engine.register_arrow("days", pa.table({"usage_date": pa.array(sorted(days), pa.date32())}))
    engine.materialize(
        "raw_ids",
        "SELECT DISTINCT usage_date, event_id FROM raw_asof "
        "WHERE usage_date IN (SELECT usage_date FROM days)",
    )
    engine.materialize("winners", stage1_normalize.winners_sql("raw_asof", "raw_ids"))
    engine.materialize("s1", stage1_normalize.on_days_sql("winners", "days"))
    engine.materialize("s2", stage2_account_service_day.account_service_day_sql("s1"))
    engine.materialize("account_ingestion", stage3_account_day.account_ingestion_sql("raw_asof"))
    engine.materialize("invoiced", stage3_account_day.invoiced_sql("s1"))
    engine.materialize(
        "s3",
        stage3_account_day.account_day_sql(
            "s2",
            "account_ingestion",
            "invoiced",
            lag_hours=settings.completeness_lag_hours,
            run_id=run_id,
            published_at=published_at,
        ),
    )
    found = engine.fetch(
        gate.gate_sql(currency=settings.currency, negative_total=settings.negative_daily_total)
    )
    findings = [
        gate.Finding(r["usage_date"], r["check_name"], r["severity"], r["detail"]) for r in found.to_pylist()
    ]
    crash_point("computed")
    files: dict[str, dict[dt.date, list[str]]] = {}
    fingerprints: dict[str, dict[dt.date, PartitionFingerprint]] = {}
    for tdef, name in STAGES:
        written = engine.write_partitions(f"SELECT * FROM {name}", staging[tdef.name], "usage_date")
        by_day: dict[dt.date, list[str]] = defaultdict(list)
        for path in written:
            by_day[day_of_file(path)].append(path)
        files[tdef.name] = dict(by_day)
        fingerprints[tdef.name] = fingerprint_files(tdef, written)
    crash_point("files_written")
    return Rebuilt(sorted(days), files, fingerprints, findings)
