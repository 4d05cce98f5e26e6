"""What detection stores: the stored rows it did not redo beside its new ones, committed as the
`usage_date` partitions of `cost_anomalies` whose rows differ (one transaction), and the report of
what changed."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from costlake.anomalies.analyse import ServiceSeries
from costlake.anomalies.bands import Finding, Params
from costlake.anomalies.changes import Changed, Key, Resume
from costlake.anomalies.contributors import Contributor, parse_contributors
from costlake.lake.warehouse import Warehouse
from costlake.tables import COST_ANOMALIES


@dataclass
class AnomalyReport:
    source_run: str  # "" before any run has finished
    series: int  # series re-analysed (every series on a full analysis)
    anomalies: int
    changed_days: list[dt.date]
    added: int
    removed: int
    snapshot_id: int | None
    skipped: bool = False
    full: bool = True  # every series analysed from its start (else only the changed ones)
    exact: int = 0  # series the float screen could not clear, analysed in exact decimals
    settled: int = 0  # of those, series whose walk stopped in step with the stored analysis
    causes_kept: int = 0  # changes of the total found again whose stored contributors stood

    def summary(self) -> str:
        """One line: what is stored now, what was re-analysed, what changed."""
        scope = "every series" if self.full else "the series that changed"
        return (
            f"{self.anomalies:,} anomalies; {self.series:,} series re-analysed ({scope}, "
            f"{self.exact:,} in exact decimals); {len(self.changed_days)} day(s) changed "
            f"(+{self.added} / -{self.removed})"
        )


Row = dict[str, Any]  # a `cost_anomalies` row, as Arrow gives it (`Table.to_pylist`)


def merge(
    old: list[Row],
    fresh: list[Row],
    resume: dict[Key, Resume] | None,
    redone: dict[Key, tuple[dt.date, dt.date]],
) -> list[Row]:
    """The stored rows the analysis did not redo, plus its rows (typed as stored), sorted: of a
    resumed series, the rows before its resume day, and its changes of the total outside the days
    `redone` (only changes before `Resume.totals` for a series the screens cleared)."""
    kept: list[Row] = []
    if resume is not None:
        for row in old:
            key = (row["account_id"], row["service_name"])
            point = resume.get(key)
            if point is None:
                kept.append(row)
                continue
            day = row["usage_date"]
            if row["kind"] == "mix_shift":
                keep = day < point.begin
            else:
                first, end = redone.get(key, (point.totals, dt.date.max))
                keep = not first <= day < end
            if keep:
                kept.append(row)
    rows = kept + pa.Table.from_pylist(fresh, schema=COST_ANOMALIES.arrow_schema()).to_pylist()
    rows.sort(key=lambda r: (r["usage_date"], r["account_id"], r["service_name"], r["kind"]))
    return rows


Stored = dict[Key, dict[dt.date, Row]]  # rows by series and first day


def stored_changes(old: list[Row], resume: dict[Key, Resume] | None) -> Stored:
    """The stored changes of the total of the series in `resume`, by series and first day."""
    out: Stored = {}
    for row in old:
        key = (row["account_id"], row["service_name"])
        if resume is not None and key in resume and row["kind"] != "mix_shift":
            out.setdefault(key, {})[row["usage_date"]] = row
    return out


def known_causes(
    series: ServiceSeries, findings: list[Finding], stored: dict[dt.date, Row], changed: Changed
) -> dict[int, list[Contributor]]:
    """The contributors of the `findings` (changes of the total of a re-analysed series) that stand
    as stored, by day: those the stored analysis found alike -- the same day, direction, cost,
    expected cost, history and duration -- whose basis and episode hold no `changed` day. A
    finding's contributors depend on nothing else (contributors.py), and its basis follows from its
    day and history (`bands.baseline_band`; the day before for `day_over_day`): they are what a
    fresh read of those days' parts would give, and those days are not read."""
    known = {}
    for f in findings:
        row = stored.get(series.day(f.index))
        if (
            row is None
            or row["contributors"] is None
            or not (
                row["direction"] == f.direction
                and row["actual_usd"] == f.actual
                and row["expected_usd"] == f.band.expected
                and row["history_days"] == f.band.history
                and row["duration_days"] == f.duration
            )
        ):
            continue
        read = [*f.band.basis, *range(f.index, f.index + max(f.duration, 1))]
        if not any(changed.first <= series.day(i) <= changed.last for i in read):
            known[f.index] = parse_contributors(row["contributors"])
    return known


def _by_day(rows: list[Row]) -> dict[dt.date, list[tuple[Any, ...]]]:
    out: dict[dt.date, list[tuple[Any, ...]]] = defaultdict(list)
    for r in rows:
        out[r["usage_date"]].append(tuple(r.values()))
    return {day: sorted(found) for day, found in out.items()}


def commit(
    wh: Warehouse,
    old_rows: list[Row],
    new_rows: list[Row],
    source: str,
    params: Params,
    last: dict[str, str],
    series: int,
    exact: int,
    full: bool,
    by_run: bool = False,
) -> AnomalyReport:
    """Commits the days whose rows differ (`by_run`: as the last step of a run, which the commit's
    properties record, so that the lake as of that run holds the anomalies it left)."""
    new, old = _by_day(new_rows), _by_day(old_rows)
    changed = sorted(d for d in new.keys() | old.keys() if new.get(d) != old.get(d))
    added = sum(len(set(new.get(d, [])) - set(old.get(d, []))) for d in changed)
    removed = sum(len(set(old.get(d, [])) - set(new.get(d, []))) for d in changed)
    snapshot_id = None
    if changed or last.get("source_run") != source or last.get("params") != repr(params):
        days = set(changed)
        rows = pa.Table.from_pylist(
            [r for r in new_rows if r["usage_date"] in days], schema=COST_ANOMALIES.arrow_schema()
        )
        props = {"source_run": source, "params": repr(params), "changed_days": str(len(changed))}
        if by_run:
            props["by_run"] = "true"
        snapshot_id = wh.replace_partition_rows(COST_ANOMALIES, changed, rows, props)
    report = AnomalyReport(source, series, len(new_rows), changed, added, removed, snapshot_id)
    report.full, report.exact = full, exact
    return report
