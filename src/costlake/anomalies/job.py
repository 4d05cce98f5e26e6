"""`costlake anomalies` and the last step of `costlake run`: detect, then commit only what changed.

Detection reads the published data as of the latest finished run: totals from stage 2
(`account_service_day_cost`), the region / pricing model / charge category split from stage 1,
and each account's span of complete days from stage 3 (a day still inside the completeness lag is
not judged: a half-delivered day would look like a drop).

It costs in proportion to what changed. The stored anomalies record the run they reflect; the next
detection re-analyses only the series whose days changed since that run (changes.py), each from
where its analysis can resume. Series are loaded in batches as float matrices (frame.py) and
screened all at once (screen.py for totals, mix.py for mix shifts); only the series the screen cannot
clear are read again in exact decimals and analysed one by one, each walk stopping once it is back
in step with the stored analysis after the series' last changed day (baseline.Sync), where the stored
findings stand. `full=True` (`costlake anomalies --full`) analyses every series from its start, as
does a change of the thresholds. The commit (store.py) replaces exactly the `usage_date` partitions
of `cost_anomalies` whose rows differ, in one transaction, so an anomaly that a correction removed
disappears and unchanged days are untouched.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from costlake.anomalies.analyse import anomaly_row, finish, parts_days
from costlake.anomalies.bands import Params
from costlake.anomalies.changes import Changed, Key, Resume, resume_points, touched
from costlake.anomalies.frame import (
    NONE_VALUE,
    Frame,
    batches,
    exact_parts,
    load_frame,
    load_parts,
    series_keys,
)
from costlake.anomalies.mix import calm_days
from costlake.anomalies.mix import screen as mix_screen
from costlake.anomalies.resumed import Screens, Starts, stands, starts_of
from costlake.anomalies.screen import candidates
from costlake.anomalies.store import AnomalyReport, Stored, commit, known_causes, merge, stored_changes
from costlake.anomalies.walks import Todo, walk_all
from costlake.duck import to_arrow
from costlake.errors import first_line
from costlake.lake.manifest import Manifest, latest_manifest, manifests
from costlake.lake.warehouse import Warehouse
from costlake.logs import current, phase
from costlake.tables import ACCOUNT_SERVICE_DAY, COST_ANOMALIES, DAILY_ACCOUNT, NORMALIZED

__all__ = ["NONE_VALUE", "AnomalyReport", "update_anomalies"]

log = logging.getLogger(__name__)


def update_anomalies(
    wh: Warehouse,
    params: Params | None = None,
    *,
    force: bool = True,
    full: bool = False,
    by_run: bool = False,
) -> AnomalyReport:
    """Detect what changed since the run the stored anomalies reflect and commit the changed days
    (`full`: analyse every series again). With `force=False`, do nothing when the anomalies already
    reflect the latest finished run. `by_run`: the last step of `costlake run`, which the commit
    records (`query --as-of` that run reads the anomalies it left). Takes the warehouse's write lock."""
    wh.ensure_tables()
    with wh.writer("anomalies"), _older_objects_frozen():
        wh.refresh()
        return _update(wh, params or Params.from_settings(wh.settings), force, full, by_run)


@contextlib.contextmanager
def _older_objects_frozen() -> Iterator[None]:
    """Detection makes many short-lived objects (decimals, rows), and each collection of the cyclic
    garbage collector's oldest generation would scan every object the process already held (after
    a run, the pipeline's): those are set aside for detection's time (`gc.freeze`) and given back
    after. About 0.1 s of the 10M re-delivery's 2 s of detection. A process that froze objects
    itself (say, before forking) is left as it is: unfreezing would release its objects too."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _update(wh: Warehouse, params: Params, force: bool, full: bool, by_run: bool = False) -> AnomalyReport:
    manifest = latest_manifest(wh)
    source = manifest.run_id if manifest else ""
    last = wh.last_properties(COST_ANOMALIES)
    same_params = last.get("params") == repr(params)
    if not force and last.get("source_run") == source and same_params:
        return AnomalyReport(source, 0, 0, [], 0, 0, None, skipped=True, full=False)
    previous = _manifest(wh, last.get("source_run", ""))
    if previous is None and last.get("source_run") and not full:
        log.warning(
            "run %s, which the stored anomalies reflect, is no longer kept (maintain expired it): "
            "analysing every series",
            last["source_run"],
        )
    if manifest is None:
        old_rows = wh.read_rows(COST_ANOMALIES).to_pylist()
        return commit(wh, old_rows, merge(old_rows, [], None, {}), source, params, last, 0, 0, True, by_run)
    from costlake.catalog.views import open_lake

    tables = [ACCOUNT_SERVICE_DAY.name, NORMALIZED.name, DAILY_ACCOUNT.name, COST_ANOMALIES.name]
    con = open_lake(wh, tables=tables)
    try:
        # DuckDB reads the many small files of the stored anomalies faster than a table scan.
        old_rows = (
            to_arrow(con, "SELECT * FROM cost_anomalies").cast(COST_ANOMALIES.arrow_schema()).to_pylist()
        )
        resume: dict[Key, Resume] | None = None
        if previous is not None and same_params and not full:
            with phase(log, "find changes") as done:
                changed = _changed(wh, previous, manifest, con)
                resume = None if changed is None else resume_points(changed, old_rows, params)
                done["series"] = "all" if resume is None else len(resume)
        stored = stored_changes(old_rows, resume)
        found = _detect(con, resume, params, stored, wh.settings.duckdb_threads)
    finally:
        con.close()
    new_rows = merge(old_rows, found.rows, resume, found.redone)
    report = commit(
        wh, old_rows, new_rows, source, params, last, found.series, found.exact, resume is None, by_run
    )
    report.settled = found.settled
    report.causes_kept = found.causes_kept
    return report


def _changed(
    wh: Warehouse, previous: Manifest, manifest: Manifest, con: duckdb.DuckDBPyConnection
) -> dict[Key, Changed] | None:
    """`touched`, or None (analyse every series) when the older run's data files cannot be read any
    more (removed by a retention policy or by hand): what changed is then unknown."""
    try:
        return touched(wh, previous, manifest, con)
    except (duckdb.IOException, OSError) as exc:
        reason = first_line(exc)
        log.warning("the data of run %s cannot be read (%s): analysing every series", previous.run_id, reason)
        return None


def _manifest(wh: Warehouse, run_id: str) -> Manifest | None:
    return next((m for m in manifests(wh) if m.run_id == run_id), None) if run_id else None


def _detect(
    con: duckdb.DuckDBPyConnection,
    resume: dict[Key, Resume] | None,
    params: Params,
    stored: Stored,
    threads: int | None = None,
) -> _Detected:
    """The series in `resume` (None: every series) analysed, each from its resume day on;
    `stored`: their stored changes of the total (`store.stored_changes`), whose contributors may
    stand (`store.known_causes`). The float screens run on `threads` threads (None: all cores)."""
    todo: list[Todo] = []
    chosen: list[pa.Table] = []
    standing: dict[Key, tuple[dt.date, dt.date]] = {}
    series = 0
    keys = series_keys(con, None if resume is None else _scope(resume, params))
    # A unit per series screened, and two more per series the screen cannot clear (its exact walk,
    # then its parts, mix shifts and causes), added to the total as such series are found.
    progress, total = current(), keys.num_rows
    progress.start("detecting anomalies", total=total, unit="series")
    with phase(log, "detect", method=params.method) as done:
        for batch in batches(keys):
            frame = load_frame(con, batch)
            starts = starts_of(frame, resume)
            suspects, screens = _screen(con, frame, batch, starts, params, threads)
            spared = stands(suspects, frame, starts, screens, params)
            suspects[list(spared)] = False
            standing.update({frame.keys[s]: days for s, days in spared.items()})
            series += len(frame.keys)
            total += 2 * int(suspects.sum())
            progress.update(total=total)
            progress.advance(len(frame.keys))
            chosen.append(batch.take(pa.array(np.flatnonzero(suspects), pa.int64())))
            todo += walk_all(np.flatnonzero(suspects), frame, starts, screens, params)
        # One read of the events for the parts of every series analysed, whatever its batch.
        rows, kept = _finish(con, pa.concat_tables(chosen) if chosen else keys, todo, params, stored)
        settled = sum(t.total.settled is not None for t in todo)
        done.update(
            series=series, exact=len(todo), settled=settled, standing=len(standing), causes_kept=kept,
            anomalies=len(rows),
        )  # fmt: skip
    return _Detected(rows, series, standing | {t.key: t.redone for t in todo}, len(todo), settled, kept)


@dataclass
class _Detected:
    rows: list[dict[str, Any]]
    series: int  # analysed
    # Of those analysed in exact decimals, the days their changes of the total were derived again on
    # (`walks.Todo.redone`)
    redone: dict[Key, tuple[dt.date, dt.date]]
    exact: int  # how many were
    settled: int  # of those, how many walks stopped in step with the stored analysis (`baseline.Sync`)
    causes_kept: int  # findings whose contributors stood as stored (`store.known_causes`)


def _scope(resume: dict[Key, Resume], params: Params) -> pa.Table:
    """(account_id, service_name, from_day, parts_from): each series' totals loaded from the billed
    history's reach before it resumes (intermittent.usual_billing), its parts from a window before
    (the mix screen reads no further)."""
    keys = sorted(resume)

    def days(back: int) -> pa.Array:
        return pa.array([_minus(resume[k].begin, dt.timedelta(days=back + 1)) for k in keys], pa.date32())

    return pa.table(
        {
            "account_id": pa.array([k[0] for k in keys], pa.string()),
            "service_name": pa.array([k[1] for k in keys], pa.string()),
            "from_day": days(params.reach),
            "parts_from": days(params.window),
        }
    )


def _minus(day: dt.date, delta: dt.timedelta) -> dt.date:
    return dt.date.min if day - dt.date.min < delta else day - delta


def _screen(
    con: duckdb.DuckDBPyConnection,
    frame: Frame,
    keys: pa.Table,
    starts: Starts,
    params: Params,
    threads: int | None = None,
) -> tuple[np.ndarray, Screens]:
    """(S,) the series the float screens cannot clear, and what the screens found (for the exact
    analysis of those): a possible change of the total from the day those are derived again on,
    or a possible mix shift. Parts are loaded only for series with calm days."""
    if params.method != "baseline":
        return np.ones(len(frame.keys), dtype=bool), Screens(None, None)
    fresh = starts.regime == frame.first
    # Expected costs from the resume day (the mix screen's calm days), findings from `totals` on.
    totals, expected, bands = candidates(
        frame.totals, starts.regime, fresh, params, starts.begin, starts.totals, threads
    )
    shifted = np.asarray(totals.any(axis=1))
    calm = calm_days(expected, frame.totals, starts.regime, shifted, params.window, starts.begin)
    calm[np.arange(frame.totals.shape[1])[None, :] < starts.begin[:, None]] = False
    load_parts(con, frame, keys, np.asarray(calm.any(axis=1)))
    mix = mix_screen(frame, calm, params, starts.begin, threads)
    whole = ~np.isnan(mix).all(axis=1)
    # A series that may have a mix shift is walked from its resume day (walks.py): its days from
    # there are screened too, all such series at once.
    again = np.flatnonzero(whole & (starts.totals > starts.begin))
    if again.size:
        regime, begin = starts.regime[again], starts.begin[again]
        bands[again] = candidates(frame.totals[again], regime, fresh[again], params, begin, threads=threads)[
            2
        ]
    return shifted | whole, Screens(bands, mix, totals)


def _finish(
    con: duckdb.DuckDBPyConnection,
    keys: pa.Table,
    todo: list[Todo],
    params: Params,
    stored: Stored,
) -> tuple[list[dict[str, Any]], int]:
    """Rows of the series of `todo` (rows of `keys`, in order): mix shifts and contributors, on the
    parts of only the days they read (none for the contributors that stand as stored); and how many
    contributors stood."""
    known = [
        {}
        if t.point is None
        else known_causes(t.series, t.total.findings, stored.get(t.key, {}), t.point.changed)
        for t in todo
    ]
    needed = [parts_days(t.total, params, t.mix_days, k) for t, k in zip(todo, known, strict=True)]
    parts = exact_parts(con, keys, needed)
    rows = []
    for t, k in zip(todo, known, strict=True):
        t.series.parts = parts[t.key]
        found = finish(t.series, t.total, params, begin=t.begin, mix_days=t.mix_days, known=k)
        rows += [anomaly_row(t.series, f, params.method) for f in found]
        current().advance()
    return rows, sum(len(k) for k in known)
