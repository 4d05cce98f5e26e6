"""`costlake anomalies` and the last step of `costlake run`: detect, then commit only what changed.

Detection reads the published data as of the latest finished run: totals from stage 2
(`account_service_day_cost`), the region / pricing model / charge category split from stage 1,
and each account's span of complete days from stage 3 (a day still inside the completeness lag is
not judged: a half-delivered day would look like a drop). Every series is analysed from its start,
because a level shift reported on one day decides what later days are compared with; the commit
then replaces exactly the `usage_date` partitions of `cost_anomalies` whose rows differ, in one
transaction, so an anomaly that a correction removed disappears and unchanged days are untouched.
The commit records the run it was computed from; `costlake run` recomputes when that run is not
the latest (also after a crash between the run and this step).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pyarrow as pa

from costlake.anomalies.analyse import ServiceSeries, analyse_all
from costlake.anomalies.contributors import DIMENSIONS
from costlake.anomalies.detect import Params
from costlake.duck import to_arrow
from costlake.lake.manifest import latest_manifest
from costlake.lake.warehouse import Warehouse
from costlake.logs import phase
from costlake.tables import COST_ANOMALIES

NONE_VALUE = "(none)"  # the value shown for a NULL region / pricing model

log = logging.getLogger(__name__)


@dataclass
class AnomalyReport:
    source_run: str  # "" before any run has finished
    series: int
    anomalies: int
    changed_days: list[dt.date]
    added: int
    removed: int
    snapshot_id: int | None
    skipped: bool = False


_SPANS = """
    SELECT account_id, min(usage_date) AS first_day, max(usage_date) FILTER (WHERE data_complete) AS last_day
    FROM daily_account_cost GROUP BY account_id"""
_TOTALS = "SELECT account_id, service_name, usage_date, total_cost_usd FROM account_service_day_cost"
_PART = """
    SELECT account_id, service_name, usage_date, '{dim}' AS dimension,
           COALESCE(CAST({dim} AS VARCHAR), '{none}') AS value, sum(billed_cost) AS cost
    FROM normalized_billing_events GROUP BY ALL"""


def load_series(wh: Warehouse) -> list[ServiceSeries]:
    """Every (account, service) series over its account's span of complete days."""
    from costlake.catalog.views import open_lake

    con = open_lake(wh)
    try:
        spans = {
            r["account_id"]: (r["first_day"], r["last_day"])
            for r in to_arrow(con, _SPANS).to_pylist()
            if r["last_day"] is not None
        }
        totals = to_arrow(con, _TOTALS).to_pylist()
        parts_sql = " UNION ALL ".join(_PART.format(dim=d, none=NONE_VALUE) for d in DIMENSIONS)
        parts = to_arrow(con, parts_sql).to_pylist()
    finally:
        con.close()
    series: dict[tuple[str, str], ServiceSeries] = {}
    for r in totals:
        span = spans.get(r["account_id"])
        if span is None:
            continue
        key = (r["account_id"], r["service_name"])
        if key not in series:
            length = (span[1] - span[0]).days + 1
            series[key] = ServiceSeries(key[0], key[1], span[0], [Decimal(0)] * length)
        _put(series[key], series[key].total, r["usage_date"], r["total_cost_usd"])
    for r in parts:
        s = series.get((r["account_id"], r["service_name"]))
        if s is not None:
            values = s.parts.setdefault((r["dimension"], r["value"]), [Decimal(0)] * len(s.total))
            _put(s, values, r["usage_date"], r["cost"])
    return [series[k] for k in sorted(series)]


def _put(series: ServiceSeries, values: list[Decimal], day: dt.date, cost: Decimal) -> None:
    index = (day - series.start).days
    if 0 <= index < len(values):
        values[index] += cost


def _by_day(rows: list[dict[str, Any]]) -> dict[dt.date, list[tuple[Any, ...]]]:
    out: dict[dt.date, list[tuple[Any, ...]]] = defaultdict(list)
    for r in rows:
        out[r["usage_date"]].append(tuple(r.values()))
    return {day: sorted(found) for day, found in out.items()}


def update_anomalies(wh: Warehouse, params: Params | None = None, *, force: bool = True) -> AnomalyReport:
    """Detect over the whole lake and commit the changed days; with `force=False`, do nothing when
    the anomalies already reflect the latest finished run. Takes the warehouse's write lock."""
    wh.ensure_tables()
    with wh.writer("anomalies"):
        wh.refresh()
        return _update(wh, params, force)


def _update(wh: Warehouse, params: Params | None, force: bool) -> AnomalyReport:
    params = params or Params.from_settings(wh.settings)
    manifest = latest_manifest(wh)
    source = manifest.run_id if manifest else ""
    last = wh.last_properties(COST_ANOMALIES)
    if not force and last.get("source_run") == source and last.get("params") == repr(params):
        return AnomalyReport(source, 0, 0, [], 0, 0, None, skipped=True)
    with phase(log, "load series") as done:
        all_series = load_series(wh) if manifest else []
        done["series"] = len(all_series)
    with phase(log, "detect", method=params.method) as done:
        new_rows = pa.Table.from_pylist(analyse_all(all_series, params), schema=COST_ANOMALIES.arrow_schema())
        done["anomalies"] = new_rows.num_rows
    new = _by_day(new_rows.to_pylist())
    old = _by_day(wh.read_rows(COST_ANOMALIES).to_pylist())
    changed = sorted(d for d in new.keys() | old.keys() if new.get(d) != old.get(d))
    added = sum(len(set(new.get(d, [])) - set(old.get(d, []))) for d in changed)
    removed = sum(len(set(old.get(d, [])) - set(new.get(d, []))) for d in changed)
    snapshot_id = None
    if changed or last.get("source_run") != source or last.get("params") != repr(params):
        keep = pa.array([d in set(changed) for d in new_rows.column("usage_date").to_pylist()], pa.bool_())
        props = {"source_run": source, "params": repr(params), "changed_days": str(len(changed))}
        snapshot_id = wh.replace_partition_rows(COST_ANOMALIES, changed, new_rows.filter(keep), props)
    return AnomalyReport(source, len(all_series), new_rows.num_rows, changed, added, removed, snapshot_id)
