"""A run's report as people read it: why each day was rebuilt, what each table committed."""

from __future__ import annotations

import datetime as dt

from rich.console import Console
from rich.table import Table

from costlake.ops.publish import PublishReport
from costlake.pipeline.run import RunReport


def day_ranges(days: list[dt.date]) -> str:
    """Sorted days folded into spans.

    >>> day_ranges([dt.date(2025, 1, 3), dt.date(2025, 1, 1), dt.date(2025, 1, 2), dt.date(2025, 1, 7)])
    '2025-01-01..2025-01-03, 2025-01-07'
    """
    spans: list[list[dt.date]] = []
    for day in sorted(days):
        if spans and (day - spans[-1][1]).days == 1:
            spans[-1][1] = day
        else:
            spans.append([day, day])
    return ", ".join(a.isoformat() if a == b else f"{a}..{b}" for a, b in spans)


def print_run(report: RunReport, console: Console) -> None:
    if not report.reasons and not report.changed:
        console.print(f"run {report.run_id}: nothing new to publish ({report.seconds:.1f} s)")
        _print_anomalies(report, console)  # a changed setting or a crashed detection caught up
        return
    console.print(
        f"run {report.run_id}: {len(report.batches)} new batch(es), {len(report.reasons)} day(s) to rebuild"
    )
    by_reason: dict[str, list[dt.date]] = {}
    for day, reasons in report.reasons.items():
        for reason in reasons:
            by_reason.setdefault(reason, []).append(day)
    for reason, days in sorted(by_reason.items()):
        console.print(f"  {reason}: {day_ranges(days)}")
    table = Table("table", "committed days", "unchanged", "held back", "rows written", "snapshot")
    for t in report.tables:
        table.add_row(
            t.table,
            day_ranges(t.committed) or "-",
            str(len(t.unchanged)),
            day_ranges(t.held_back) or "-",
            f"{t.rows:,}",
            str(t.snapshot_id or "-"),
        )
    console.print(table)
    for f in report.findings:
        console.print(f"  gate {f.severity}: {f.usage_date} {f.check}: {f.detail}", markup=False)
    _print_anomalies(report, console)
    console.print(f"done in {report.seconds:.1f} s")


def _print_anomalies(report: RunReport, console: Console) -> None:
    a = report.anomalies if isinstance(report, PublishReport) else None
    if a is not None and not a.skipped:
        console.print(f"anomalies: {a.summary()}")
    sent = report.alerts if isinstance(report, PublishReport) else None
    for result in sent.alerts if sent is not None else []:
        console.print(f"alerts: {result.line()}", markup=False, highlight=False)
