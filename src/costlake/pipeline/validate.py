"""`costlake validate`: run the quality gate over the published tables, on demand."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from costlake.duck import scratch_folder
from costlake.engines import Engine, create_engine
from costlake.lake.batches import incomplete_deliveries, registered_batches
from costlake.lake.filters import at_most
from costlake.lake.manifest import latest_manifest
from costlake.lake.warehouse import Warehouse
from costlake.pipeline import gate, stage1_normalize
from costlake.pipeline.rebuild import STAGES
from costlake.tables import RAW


def validate(
    wh: Warehouse, first: dt.date | None = None, last: dt.date | None = None
) -> tuple[int, list[gate.Finding]]:
    """(days checked, findings) for the published days in [first, last] (all when unbounded): the
    stage tables as the latest finished run left them, as every reader sees them. A run stopped
    between its commits leaves a table ahead of the others until the next run finishes them; checked
    as they are, such days failed the reconciliation although no reader sees them."""
    wh.ensure_tables()
    manifest = latest_manifest(wh)
    watermark = manifest.batch_seq if manifest is not None else 0
    window = _window(first, last)
    with (
        scratch_folder("costlake-validate-") as tmp,
        create_engine(wh.settings, tmp) as engine,
    ):
        _stages(wh, engine, manifest.snapshots if manifest is not None else {}, window)
        raw_files = wh.data_files(RAW, row_filter=at_most("batch_seq", watermark)) if watermark else []
        engine.register_files("raw_asof", raw_files, RAW.arrow_schema())
        short = incomplete_deliveries(registered_batches(wh), watermark)
        engine.materialize("readings", stage1_normalize.readings_sql("raw_asof", short))
        raw = stage1_normalize.counted_sql("raw_asof", "readings")
        engine.materialize(
            "raw_dated",
            f"SELECT DISTINCT usage_date, event_id FROM {raw} "
            f"WHERE billing_period_start IS NULL AND {window}",
        )
        # A retracted event has no published version: its winner is its tombstone.
        engine.materialize("ranked", stage1_normalize.ranked_sql(raw, "raw_dated"))
        engine.materialize(
            "raw_ids",
            "SELECT * FROM raw_dated WHERE event_id NOT IN (SELECT event_id FROM "
            f"({stage1_normalize.winners_sql('ranked')}) AS w WHERE NOT ({stage1_normalize.LIVE}))",
        )
        engine.materialize(
            "winners", "SELECT *, CAST(NULL AS STRING) AS op FROM s1_all WHERE billing_period_start IS NULL"
        )
        days = (
            engine.fetch(
                "SELECT count(DISTINCT usage_date) AS n FROM (SELECT usage_date FROM s1 "
                "UNION ALL SELECT usage_date FROM raw_ids) AS d"
            )
            .column("n")[0]
            .as_py()
        )
        engine.materialize("raw_days", gate.RAW_DAYS_SQL)
        found = engine.fetch(
            gate.gate_sql(
                currency=wh.settings.currency,
                negative_total=wh.settings.negative_daily_total,
                dialect=engine.dialect,
            )
        )
    findings = [
        gate.Finding(r["usage_date"], r["check_name"], r["severity"], r["detail"]) for r in found.to_pylist()
    ]
    return int(days), findings


def _window(first: dt.date | None, last: dt.date | None) -> str:
    """The condition on `usage_date` of the days [first, last], unbounded where None."""
    window = "TRUE"
    if first:
        window += f" AND usage_date >= DATE '{first.isoformat()}'"
    if last:
        window += f" AND usage_date <= DATE '{last.isoformat()}'"
    return window


def _stages(wh: Warehouse, engine: Engine, snapshots: Mapping[str, int | None], window: str) -> None:
    """Relations `s1`..`s3` (and `s1_all`..: every day): each stage table at its snapshot of
    `snapshots` (a run's manifest; none: nothing published yet), its days of `window`."""
    for tdef, name in STAGES:
        snapshot = snapshots.get(tdef.name)
        files = wh.data_files(tdef, snapshot_id=snapshot) if snapshot is not None else []
        engine.register_files(f"{name}_all", files, tdef.arrow_schema())
        engine.materialize(name, f"SELECT * FROM {name}_all WHERE {window}")
