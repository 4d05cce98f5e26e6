"""What detection must look at again: the series whose days changed since the run the stored
anomalies reflect, and the day each one's analysis resumes from.

What changed is what differs between that run's snapshot of the stage tables and the latest run's,
so the changes of every run in between are included, a run that crashed before detection too. Only
the data files one snapshot has and the other has not are read: a series changed when any of its
(day, region, pricing model, charge category, usage type) sums differs between the two; an account
whose first or last complete day moved changes all its series from there.

A series resumes twice `mix_shift_days` before its earliest changed day (a mix shift looks that
far ahead, and is dated up to that much before its first qualifying day), moved back until no
stored change is open that day (a change that began earlier and lasted into it is re-analysed from
its first day, and a mix shift from the window before it), with the level of the last level shift
before that day: exactly the state a full analysis would have there,
so the result is the same as analysing everything again (tests/anomalies/test_incremental.py).

Changes of the total are judged on the days before them only, so they can differ only from the
earliest changed day on (moved back to the start of a change of the total open then): before that
day (`Resume.totals`) the stored ones stand, unless the series may have a mix shift (then its whole
analysis starts at `begin`) or a level shift starts in between. On a daily delivery that spares the
exact analysis of every series whose only findings lie in the two weeks before the new day.
They stand again after the last changed day too, once a window has passed and the walk is back in
step with the stored one (`Resume.settle`, `baseline.Sync`; on a series billed now and then, once
no day up to three windows after it can read it in its billed history): a correction in the middle
of the lake re-derives the findings up to a window after it (three, billed now and then), not those
to the end.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb

from costlake.anomalies.bands import Params
from costlake.anomalies.baseline import settles
from costlake.anomalies.frame import SPANS_OF
from costlake.duck import sql_string, table_scan, to_arrow
from costlake.lake.manifest import Manifest
from costlake.lake.warehouse import Warehouse
from costlake.tables import ACCOUNT_SERVICE_DAY, DAILY_ACCOUNT, NORMALIZED, TableDef

Key = tuple[str, str]
DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Changed:
    """The days of a series that changed: all of them lie in [first, last]."""

    first: dt.date  # date.min: from its first day
    last: dt.date  # date.max: up to its end (days that became complete, a moved account)


@dataclass(frozen=True)
class Resume:
    begin: dt.date  # first day analysed again
    regime: dt.date | None  # first day of the level in force then (None: the series' first day)
    totals: dt.date  # first day whose changes of the total are derived again (never before `begin`)
    # From the first day on or after `settle` on which the analysis is back in the stored one's
    # state, the stored changes of the total stand (see `baseline.Sync`); date.max: never.
    settle: dt.date = dt.date.max
    stored: tuple[tuple[dt.date, int], ...] = ()  # the stored changes of the total: first day, duration
    changed: Changed = Changed(dt.date.min, dt.date.max)  # the series' changed days lie in there


# One aggregation over both sides: a (day, region, pricing model, charge category, usage type) group
# changed when its sums differ, or when it is on one side only.
_CHANGED = """
    SELECT account_id, service_name, min(usage_date) AS first, max(usage_date) AS last FROM (
        SELECT account_id, service_name, usage_date FROM (
            SELECT false AS came, * FROM ({gone}) AS g UNION ALL SELECT true AS came, * FROM ({came}) AS c
        ) AS events
        GROUP BY account_id, service_name, usage_date, region, pricing_model, charge_category, usage_type
        HAVING sum(billed_cost) FILTER (WHERE NOT came) IS DISTINCT FROM sum(billed_cost) FILTER (WHERE came)
            OR NOT (bool_or(came) AND bool_or(NOT came))
    ) GROUP BY ALL"""


@dataclass(frozen=True)
class _Files:
    """The data files of one table at the older and the newer run."""

    old: frozenset[str]
    new: frozenset[str]

    @property
    def gone(self) -> list[str]:
        return sorted(self.old - self.new)

    @property
    def came(self) -> list[str]:
        return sorted(self.new - self.old)


def touched(
    wh: Warehouse, old: Manifest, new: Manifest, current: duckdb.DuckDBPyConnection
) -> dict[Key, Changed]:
    """Each series whose data changed between the two runs, with the span of its changed days;
    `current` reads the lake as of `new` (the latest finished run).

    Runs replace whole files, so only the files one run has and the other has not are read: a
    series changed when the sums of its (day, region, pricing model, charge category, usage type)
    groups in the files that went differ from those in the files that came. (When a day keeps some
    files, a group's sum over the whole day changes exactly when its sum over the replaced files
    does; a group that only appears or vanishes there with nothing to its name counts as a change,
    which re-analyses a series needlessly but never misses one.)"""
    files = {t.name: _files(wh, t, old, new) for t in (NORMALIZED, ACCOUNT_SERVICE_DAY, DAILY_ACCOUNT)}
    events = files[NORMALIZED.name]
    sql = _CHANGED.format(gone=_scan(wh, NORMALIZED, events.gone), came=_scan(wh, NORMALIZED, events.came))
    out: dict[Key, Changed] = {}
    for row in to_arrow(current, sql).to_pylist():
        _widen(out, (row["account_id"], row["service_name"]), Changed(row["first"], row["last"]))
    spans = files[DAILY_ACCOUNT.name]
    moved = _moved_spans(
        _spans(current, _scan(wh, DAILY_ACCOUNT, sorted(spans.old))),
        _spans(current, _scan(wh, DAILY_ACCOUNT, sorted(spans.new))),
    )
    if moved:  # every series the account has or had (what it had is published now or in a file that went)
        gone = _scan(wh, ACCOUNT_SERVICE_DAY, files[ACCOUNT_SERVICE_DAY.name].gone)
        for key in _series_of(current, gone, moved):
            _widen(out, key, Changed(moved[key[0]], dt.date.max))
    return out


def _files(wh: Warehouse, tdef: TableDef, old: Manifest, new: Manifest) -> _Files:
    def listed(manifest: Manifest) -> frozenset[str]:
        snapshot = manifest.snapshots.get(tdef.name)
        return (
            frozenset()
            if snapshot is None
            else frozenset(wh.data_files(tdef, snapshot_id=snapshot, fetch=False))
        )

    return _Files(listed(old), listed(new))


def _scan(wh: Warehouse, tdef: TableDef, files: list[str]) -> str:
    """A query over these files of the table (fetched if remote)."""
    return table_scan(wh.storage.readable(files), tdef.arrow_schema())


def _spans(con: duckdb.DuckDBPyConnection, scan: str) -> dict[str, Any]:
    sql = SPANS_OF.format(source=f"({scan}) AS daily")
    return {r["account_id"]: r for r in to_arrow(con, sql).to_pylist()}


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


def _series_of(con: duckdb.DuckDBPyConnection, gone: str, accounts: Iterable[str]) -> list[Key]:
    """The series of `accounts` in the published totals (`con` reads the newer run) or in the files
    of the query `gone`."""
    listed = ", ".join(sql_string(a) for a in accounts)
    sql = f"""SELECT DISTINCT account_id, service_name FROM (
                  SELECT account_id, service_name FROM account_service_day_cost
                  UNION ALL SELECT account_id, service_name FROM ({gone}) AS g
              ) AS totals WHERE account_id IN ({listed})"""
    return [(r["account_id"], r["service_name"]) for r in to_arrow(con, sql).to_pylist()]


def _widen(out: dict[Key, Changed], key: Key, days: Changed) -> None:
    was = out.get(key, days)
    out[key] = Changed(min(was.first, days.first), max(was.last, days.last))


def resume_points(
    changed: dict[Key, Changed], stored: Sequence[dict[str, Any]], params: Params
) -> dict[Key, Resume]:
    """Where each changed series' analysis resumes, given the anomalies stored for it (rows of
    `cost_anomalies`)."""
    by_series: dict[Key, list[dict[str, Any]]] = {}
    for row in stored:
        key = (row["account_id"], row["service_name"])
        if key in changed:
            by_series.setdefault(key, []).append(row)
    out = {}
    for key, days in changed.items():
        found, day = by_series.get(key, []), days.first
        # A mix shift is judged on the days after it, and dated up to a span before its first
        # qualifying day: two spans back, nothing a change can move is left out.
        ahead = day - 2 * params.mix_shift_days * DAY if day != dt.date.min else day
        begin = _quiet_day(ahead, found, params)
        shifts = _shifts(found, begin, params)
        # A change of the total is judged on the days before it: it moves only from the changed
        # day on (or from the start of a change open then). Kept from there back to `begin`, unless
        # a level shift starts in between (the screen judges those days on the level of `begin`).
        of_total = [f for f in found if f["kind"] != "mix_shift"]
        totals = max(begin, _quiet_day(_back(day, params), of_total, params))
        if _shifts(found, totals, params) != shifts:
            totals = begin
        changes = tuple((f["usage_date"], int(f["duration_days"])) for f in found if f["kind"] != "mix_shift")
        regime = max(shifts) if shifts else None
        out[key] = Resume(begin, regime, totals, _settle(days.last, params), changes, days)
    return out


def _settle(last: dt.date, params: Params) -> dt.date:
    """The first day whose judgement reads no changed day (`baseline.settles`)."""
    reach = settles(0, params) * DAY
    return dt.date.max if last > dt.date.max - reach else last + reach


def _shifts(found: list[dict[str, Any]], before: dt.date, params: Params) -> list[dt.date]:
    """The first days of the stored level shifts that start before `before`."""
    return [
        f["usage_date"]
        for f in found
        if f["kind"] != "mix_shift" and f["duration_days"] >= params.shift_days and f["usage_date"] < before
    ]


def _back(day: dt.date, params: Params) -> dt.date:
    """How far before `day` a change of the total that a changed `day` can make may be dated
    (`Params.dated_back`): the walk must have judged those days."""
    back = params.dated_back * DAY
    return dt.date.min if day - dt.date.min < back else day - back


def _quiet_day(day: dt.date, found: list[dict[str, Any]], params: Params) -> dt.date:
    """The latest day no later than `day` on which no stored change is open (a change ends at most
    two days after its last day: one grace day, then the day that closes it), moved back over the
    days a change open then may be dated to when it is derived again (`_back`)."""
    reach = (params.window + params.mix_shift_days) * DAY
    moved = True
    while moved:
        moved = False
        for f in found:
            start, length = f["usage_date"], int(f["duration_days"]) * DAY
            if f["kind"] == "mix_shift":
                lo, hi = start - reach, start + length + params.mix_shift_days * DAY
            else:
                lo, hi = _back(start, params), start + length + 2 * DAY
            if lo < day < hi and day != dt.date.min:
                day, moved = lo, True
    return day
