"""What detection must look at again: the series whose days changed since the run the stored
anomalies reflect, and the day each one's analysis resumes from.

The changed days come from the publish log of every run after that one (a run that crashed before
detection is included: its successor's anomalies still reflect the older run). Inside those days a
series changed when any of its (region, pricing model, charge category) sums differs between the two
runs' snapshots; an account whose first or last complete day moved changes all its series from there.

A series resumes twice `mix_shift_days` before its earliest changed day (a mix shift looks that
far ahead, and is dated up to that much before its first qualifying day), moved back until no
stored change is open that day (a change that began earlier and lasted into it is re-analysed from
its first day, and a mix shift from the window before it), with the level of the last level shift
before that day: exactly the state a full analysis would have there,
so the result is the same as analysing everything again (tests/anomalies/test_incremental.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from costlake.anomalies.bands import Params
from costlake.anomalies.frame import SPANS_SQL
from costlake.duck import sql_string, to_arrow
from costlake.lake.manifest import Manifest, manifests
from costlake.lake.warehouse import Warehouse
from costlake.tables import ACCOUNT_SERVICE_DAY, DAILY_ACCOUNT, NORMALIZED, PUBLISH_LOG

Key = tuple[str, str]
DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Resume:
    begin: dt.date  # first day analysed again
    regime: dt.date | None  # first day of the level in force then (None: the series' first day)


def changed_days(wh: Warehouse, old: Manifest, new: Manifest) -> list[dt.date]:
    """Days any run after `old` (up to `new`) published, in the tables detection reads."""
    runs: set[str] = set()
    after = False
    for m in manifests(wh):
        if after:
            runs |= m.covers
        after = after or m.run_id == old.run_id
        if m.run_id == new.run_id:
            break
    if not runs:
        return []
    wanted = {NORMALIZED.name, ACCOUNT_SERVICE_DAY.name, DAILY_ACCOUNT.name}
    only = "run_id IN (" + ", ".join(sql_string(r) for r in sorted(runs)) + ")"
    log = wh.read_rows(PUBLISH_LOG, new.log_snapshot_id, only).to_pylist()
    return sorted({r["usage_date"] for r in log if r["table_name"] in wanted})


_FINGERPRINT = """
    SELECT account_id, service_name, usage_date, region, pricing_model, charge_category, usage_type,
           sum(billed_cost) AS cost
    FROM normalized_billing_events WHERE usage_date IN ({days}) GROUP BY ALL"""


def touched(
    wh: Warehouse, old: Manifest, new: Manifest, current: duckdb.DuckDBPyConnection
) -> dict[Key, dt.date]:
    """Each series whose data changed between the two runs, with its earliest changed day;
    `current` reads the lake as of `new` (the latest finished run)."""
    from costlake.catalog.views import open_lake

    days = changed_days(wh, old, new)
    listed = ", ".join(f"DATE {sql_string(d.isoformat())}" for d in days) or "NULL"
    seen: dict[str, Any] = {}
    previous = open_lake(
        wh, as_of=old.run_id, tables=[NORMALIZED.name, ACCOUNT_SERVICE_DAY.name, DAILY_ACCOUNT.name]
    )
    try:
        for label, con in (("old", previous), ("new", current)):
            found = to_arrow(con, _FINGERPRINT.format(days=listed)).to_pylist()
            seen[label] = {tuple(r.values()) for r in found}
            seen[label + "_spans"] = {r["account_id"]: r for r in to_arrow(con, SPANS_SQL).to_pylist()}
        out: dict[Key, dt.date] = {}
        for row in seen["old"] ^ seen["new"]:
            _earliest(out, (row[0], row[1]), row[2])
        moved = _moved_spans(seen["old_spans"], seen["new_spans"])
        if moved:  # every series the account has or had
            for key in {*_series_of(previous, moved), *_series_of(current, moved)}:
                _earliest(out, key, moved[key[0]])
    finally:
        previous.close()
    return out


def _moved_spans(old: dict[str, Any], new: dict[str, Any]) -> dict[str, dt.date]:
    """Accounts whose first or last complete day moved, with the first day to look at again
    (`date.min`: all of it)."""
    moved: dict[str, dt.date] = {}
    for account in old.keys() | new.keys():
        was, now = old.get(account), new.get(account)
        if was is None or now is None or was["first_day"] != now["first_day"]:
            moved[account] = dt.date.min
        elif was["last_day"] != now["last_day"]:
            ends = [d for d in (was["last_day"], now["last_day"]) if d is not None]
            moved[account] = min(ends) + DAY if len(ends) == 2 else dt.date.min
    return moved


def _series_of(con: duckdb.DuckDBPyConnection, accounts: Iterable[str]) -> list[Key]:
    listed = ", ".join(sql_string(a) for a in accounts)
    sql = f"""SELECT DISTINCT account_id, service_name FROM account_service_day_cost
              WHERE account_id IN ({listed})"""
    return [(r["account_id"], r["service_name"]) for r in to_arrow(con, sql).to_pylist()]


def _earliest(out: dict[Key, dt.date], key: Key, day: dt.date) -> None:
    if key not in out or day < out[key]:
        out[key] = day


def resume_points(changed: dict[Key, dt.date], stored: pa.Table, params: Params) -> dict[Key, Resume]:
    """Where each changed series' analysis resumes, given the anomalies stored for it."""
    by_series: dict[Key, list[dict[str, Any]]] = {}
    for row in stored.select(
        ["account_id", "service_name", "usage_date", "kind", "duration_days"]
    ).to_pylist():
        key = (row["account_id"], row["service_name"])
        if key in changed:
            by_series.setdefault(key, []).append(row)
    out = {}
    for key, day in changed.items():
        found = by_series.get(key, [])
        # A mix shift is judged on the days after it, and dated up to a span before its first
        # qualifying day: two spans back, nothing a change can move is left out.
        ahead = day - 2 * params.mix_shift_days * DAY if day != dt.date.min else day
        begin = _quiet_day(ahead, found, params)
        shifts = [
            f["usage_date"]
            for f in found
            if f["kind"] != "mix_shift"
            and f["duration_days"] >= params.shift_days
            and f["usage_date"] < begin
        ]
        out[key] = Resume(begin, max(shifts) if shifts else None)
    return out


def _quiet_day(day: dt.date, found: list[dict[str, Any]], params: Params) -> dt.date:
    """The latest day no later than `day` on which no stored change is open (a change ends at most
    two days after its last day: one grace day, then the day that closes it)."""
    reach = (params.window + params.mix_shift_days) * DAY
    moved = True
    while moved:
        moved = False
        for f in found:
            start, length = f["usage_date"], int(f["duration_days"]) * DAY
            if f["kind"] == "mix_shift":
                lo, hi = start - reach, start + length + params.mix_shift_days * DAY
            else:
                lo, hi = start, start + length + 2 * DAY
            if lo < day < hi and day != dt.date.min:
                day, moved = lo, True
    return day
