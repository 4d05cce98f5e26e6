"""Incremental detection stores exactly what analysing every series again would: after deliveries,
corrections, backfills and crashed runs in any order, and it re-analyses only the series a change
touched (src/costlake/anomalies/changes.py)."""

from __future__ import annotations

import csv
import datetime as dt
import os
import random
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from costlake.anomalies import resumed
from costlake.anomalies.analyse import analyse_all
from costlake.anomalies.bands import Params
from costlake.anomalies.changes import Changed, Resume
from costlake.anomalies.detect import detect
from costlake.anomalies.frame import Frame
from costlake.anomalies.job import AnomalyReport, update_anomalies
from costlake.anomalies.resumed import Screens, Starts, sync_for
from costlake.anomalies.screen import candidates
from costlake.anomalies.series import load_series
from costlake.lake.faults import ENV, EXIT_CODE
from costlake.lake.manifest import latest_manifest
from costlake.lake.warehouse import Warehouse
from costlake.ops.publish import publish_and_detect
from costlake.pipeline.ingest import ingest_files
from costlake.settings import Settings
from costlake.synthetic.generate import generate
from costlake.tables import COST_ANOMALIES, NORMALIZED

START = dt.date(2025, 3, 3)
HEADER = ("event_id", "usage_date", "account_id", "service_name", "region", "cost_usd", "ingestion_ts")
MAIN, SIDE, NEW = "us-east-1", "eu-west-1", "ap-south-1"
LEVELS = {"AmazonEC2": 300.0, "AmazonS3": 90.0, "AWSLambda": 40.0, "AmazonRDS": 150.0}
# Every crash point of a run that leaves detection undone; the last one leaves the run published.
CRASH_POINTS = (
    "before_commit:normalized_billing_events",
    "after_commit:account_service_day_cost",
    "after_commit:daily_account_cost",
    "before_commit:publish_log",
    "after_commit:publish_log",
)

Key = tuple[str, str]


@dataclass
class Series:
    level: float
    main: str = MAIN  # region of the larger share (event "a"); the smaller one (event "b") is in SIDE
    share: float = 0.7


class Bill:
    """The source system's bill: the latest version of every event, delivered as native CSV files.
    Day i of a series has two events, `{account}-{service}-{i}-a` (its main region) and `-b`.
    Each file is stamped a minute after the one before, on the day after the last delivered day,
    so a correction never moves an account's last complete day and a delivery always does."""

    def __init__(self, folder: Path, accounts: int, services: int, seed: int) -> None:
        self.folder = folder
        self.rng = random.Random(seed)
        names = list(LEVELS)[:services]
        self.series = {
            (f"{a + 1}" * 12, s): Series(LEVELS[s] * (1 + a / 3)) for a in range(accounts) for s in names
        }
        self.events: dict[str, list[str]] = {}
        self.days = 0
        self.sent = 0

    def deliver(self, days: int, spikes: Iterable[tuple[Key, int]] = ()) -> Path:
        """The next `days` days of every series (spiked x8 on the (series, day) of `spikes`)."""
        spiked = set(spikes)
        rows = []
        for i in range(self.days, self.days + days):
            for key, s in self.series.items():
                cost = s.level * (1 + self.rng.uniform(-0.08, 0.08)) * (8 if (key, i) in spiked else 1)
                main = round(cost * s.share, 2)
                rows += [self._row(key, i, "a", s.main, main), self._row(key, i, "b", SIDE, cost - main)]
        self.days += days
        return self._send(rows)

    def correct(self, keys: Iterable[Key], first: int, days: int, factor: float, move: bool) -> Path:
        """Re-deliver the events of `keys` on days [first, first + days) with their cost times
        `factor`, the main share moved to (or back from) NEW when `move`."""
        rows = []
        for key in keys:
            for i in range(max(first, 0), min(first + days, self.days)):
                for part in "ab":
                    row = self.events[f"{key[0]}-{key[1]}-{i}-{part}"]
                    region = {MAIN: NEW, NEW: MAIN}.get(row[4], row[4]) if move else row[4]
                    rows.append(self._row(key, i, part, region, float(row[5]) * factor))
        return self._send(rows)

    def _row(self, key: Key, day: int, part: str, region: str, cost: float) -> list[str]:
        event = f"{key[0]}-{key[1]}-{day}-{part}"
        row = [event, (START + dt.timedelta(day)).isoformat(), *key, region, f"{cost:.2f}", ""]
        self.events[event] = row
        return row

    def _send(self, rows: list[list[str]]) -> Path:
        self.sent += 1
        stamp = dt.datetime.combine(START + dt.timedelta(self.days), dt.time()) + dt.timedelta(
            minutes=self.sent
        )
        path = self.folder / f"bill-{self.sent:03d}.csv"
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(HEADER)
            writer.writerows([*row[:-1], stamp.isoformat(sep=" ")] for row in rows)
        return path


def _order(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple((v is None, "" if v is None else v) for v in row.values())


def stored_rows(wh: Warehouse) -> list[dict[str, Any]]:
    wh.refresh()
    return sorted(wh.read_rows(COST_ANOMALIES).to_pylist(), key=_order)


def assert_matches_full_analysis(wh: Warehouse) -> list[dict[str, Any]]:
    """The stored anomalies are, row for row, every series analysed from its start in exact decimals
    (no screen), and a full detection changes nothing. Returns them."""
    stored = stored_rows(wh)
    found = analyse_all(load_series(wh), Params.from_settings(wh.settings))
    expected = sorted(
        pa.Table.from_pylist(found, schema=COST_ANOMALIES.arrow_schema()).to_pylist(), key=_order
    )
    if stored != expected:
        only_stored = [r for r in stored if r not in expected]
        only_full = [r for r in expected if r not in stored]
        pytest.fail(f"stored but not found again: {only_stored}\nfound again but not stored: {only_full}")
    again = update_anomalies(wh, full=True)
    assert again.full and again.changed_days == [] and again.snapshot_id is None
    return stored


def run(wh: Warehouse, *files: Path) -> AnomalyReport:
    ingest_files(wh, list(files))
    report = publish_and_detect(wh)
    assert report.held_back == [] and report.anomalies is not None
    return report.anomalies


def crashed_run(wh: Warehouse, point: str, *files: Path) -> None:
    """Ingest `files`, then a real `costlake run` killed at `point`, before detection."""
    ingest_files(wh, list(files))
    command = [sys.executable, "-m", "costlake", "--warehouse", str(wh.root), "run"]
    proc = subprocess.run(command, env=dict(os.environ, **{ENV: point}), capture_output=True, text=True)
    assert proc.returncode == EXIT_CODE, proc.stdout + proc.stderr


def runs(wh: Warehouse) -> tuple[str, str]:
    """The latest finished run, and the run the stored anomalies reflect."""
    manifest = latest_manifest(wh)
    assert manifest is not None
    return manifest.run_id, wh.last_properties(COST_ANOMALIES)["source_run"]


def _near(stored: list[dict[str, Any]], bill: Bill) -> list[tuple[Key, int]]:
    """(series, day) of every stored anomaly, and of four days spread over the series: where a
    step's change lands (a change inside or just after an open anomaly is the hard case for
    resuming)."""
    keys = sorted(bill.series)
    named = {(a, s.lower()): (a, s) for a, s in keys}  # stage 1 case-folds service names
    found = [(named[r["account_id"], r["service_name"]], (r["usage_date"] - START).days) for r in stored]
    return sorted(set(found)) + [(keys[i % len(keys)], 14 + (7 * i) % (bill.days - 14)) for i in range(4)]


def _step(data: st.DataObject, bill: Bill, stored: list[dict[str, Any]]) -> tuple[str, Path]:
    """Draw one change of the bill and write it: a delivery, a correction or a backfill."""
    kind = data.draw(st.sampled_from(["deliver", "correct", "backfill"]), label="kind")
    keys = sorted(bill.series)
    if kind == "deliver":
        days = data.draw(st.integers(2, 6), label="days")
        key = data.draw(st.sampled_from(keys), label="changed series")
        change = data.draw(st.sampled_from(["none", "spike", "step_up", "step_down", "move"]), label="change")
        if change == "step_up" or change == "step_down":
            bill.series[key].level *= 2.2 if change == "step_up" else 0.4
        if change == "move":
            bill.series[key].main = NEW if bill.series[key].main == MAIN else MAIN
        spikes = [(key, bill.days + days // 2)] if change == "spike" else []
        return kind, bill.deliver(days, spikes)
    key, near = data.draw(st.sampled_from(_near(stored, bill)), label="near")
    day = min(max(near + data.draw(st.integers(-3, 9), label="offset"), 0), bill.days - 1)
    if kind == "correct":
        factor = data.draw(st.sampled_from([0.2, 0.6, 1.3, 5.0]), label="factor")
        return kind, bill.correct([key], day, 1, factor, move=False)
    # A backfill: one series or a whole account, over some days, raised or lowered or moved.
    whole = data.draw(st.booleans(), label="whole account")
    chosen = [k for k in keys if k[0] == key[0]] if whole else [key]
    length = data.draw(st.integers(3, 12), label="length")
    factor = data.draw(st.sampled_from([0.4, 1.0, 1.0, 2.5]), label="factor")
    move = factor == 1.0 or data.draw(st.booleans(), label="move")
    return kind, bill.correct(chosen, day, length, factor, move)


@settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # a shrink re-runs whole pipelines: minutes
)
@pytest.mark.slow
@given(data=st.data())
def test_incremental_detection_equals_a_full_analysis_after_every_step(
    data: st.DataObject, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("incremental")
    wh = Warehouse(Settings(warehouse=str(folder / "wh")))
    bill = Bill(folder, accounts=2, services=3, seed=data.draw(st.integers(0, 2**16), label="seed"))
    keys = sorted(bill.series)
    days = data.draw(st.integers(54, 60), label="first days")
    first = [bill.deliver(days - 34)]
    bill.series[keys[5]].level *= 2  # a level shift that ends: the level after it starts there
    first.append(bill.deliver(10))
    bill.series[keys[5]].level /= 2
    first.append(bill.deliver(4))
    bill.series[keys[2]].level *= 2.5  # a level shift that lasts
    first.append(bill.deliver(8))
    bill.series[keys[3]].main = NEW  # a mix shift
    first.append(bill.deliver(12, spikes=[(keys[0], days - 10), (keys[4], days - 5), (keys[5], days - 8)]))
    assert run(wh, *first).full
    stored = assert_matches_full_analysis(wh)
    assert {r["kind"] for r in stored} >= {"spike", "step_up", "mix_shift"}, "the steps have work to do"

    pending = False  # a crashed run that detection has not caught up with
    for n in range(data.draw(st.integers(3, 5), label="steps")):
        kind, path = _step(data, bill, stored)
        if data.draw(st.integers(0, 3), label="crash") == 3:
            crashed_run(wh, data.draw(st.sampled_from(CRASH_POINTS), label="point"), path)
            assert stored_rows(wh) == stored, "a crashed run does not touch the anomalies"
            pending = True
            continue
        report = run(wh, path)
        assert not report.full and not report.skipped, (n, kind)
        stored, pending = assert_matches_full_analysis(wh), False
    if pending:  # the next run, with nothing new to publish, catches up
        report = run(wh)
        assert not report.full and not report.skipped
        assert_matches_full_analysis(wh)


def test_a_correction_reanalyses_only_the_series_it_touched(tmp_path: Path) -> None:
    wh = Warehouse(Settings(warehouse=str(tmp_path / "wh")))
    bill = Bill(tmp_path, accounts=3, services=4, seed=7)
    keys = sorted(bill.series)
    assert run(wh, bill.deliver(40, spikes=[(keys[5], 30)])).series == 12

    one_day = run(wh, bill.correct([keys[5]], 20, 1, 1.3, move=False))
    assert (one_day.series, one_day.full) == (1, False)
    assert_matches_full_analysis(wh)

    first_account, third_account = keys[1], keys[10]
    assert first_account[0] != third_account[0]
    two = run(wh, bill.correct([first_account, third_account], 32, 1, 5.0, move=False))
    assert (two.series, two.full, two.added) == (2, False, 2)  # a spike in each
    assert_matches_full_analysis(wh)


def test_an_early_correction_keeps_the_findings_after_the_walk_is_back_in_step(tmp_path: Path) -> None:
    """A day's judgement reads the window before it: the exact walk of a series corrected early stops
    on the first day past the window after its last changed day where it is in step with the stored
    analysis (no change open, the same level), and the stored spike after it stands. A correction
    inside the window before that spike walks to the end."""
    wh = Warehouse(Settings(warehouse=str(tmp_path / "wh")))
    bill = Bill(tmp_path, accounts=1, services=2, seed=5)
    keys = sorted(bill.series)
    assert run(wh, bill.deliver(80, spikes=[(keys[0], 70), (keys[1], 72)])).anomalies == 2

    early = run(wh, bill.correct([keys[0]], 20, 1, 5.0, move=False))  # a spike on day 20
    assert (early.series, early.exact, early.settled) == (1, 1, 1)
    assert (early.anomalies, early.added, early.removed) == (3, 1, 0)
    assert_matches_full_analysis(wh)

    late = run(wh, bill.correct([keys[0]], 60, 2, 0.2, move=False))  # a dip on day 60, then back
    assert (late.series, late.exact, late.settled) == (1, 1, 0)
    assert_matches_full_analysis(wh)


def test_a_finding_found_again_on_unchanged_days_keeps_its_stored_causes(tmp_path: Path) -> None:
    """A spike found again by a walk, alike and with no changed day among its basis (the same
    weekday over the window before it) and its own day, keeps its stored contributors without its
    parts being read; one whose basis holds a changed day has them computed again. (Both equal a
    full analysis: test_incremental_detection_equals_a_full_analysis_after_every_step.)"""
    wh = Warehouse(Settings(warehouse=str(tmp_path / "wh")))
    bill = Bill(tmp_path, accounts=1, services=2, seed=5)
    keys = sorted(bill.series)
    assert run(wh, bill.deliver(80, spikes=[(keys[0], 70)])).anomalies == 1

    aside = run(wh, bill.correct([keys[0]], 60, 2, 1.0, move=True))  # days 60-61 move to another region
    assert (aside.series, aside.exact, aside.settled, aside.causes_kept) == (1, 1, 0, 1)
    assert_matches_full_analysis(wh)

    basis = run(wh, bill.correct([keys[0]], 63, 1, 1.02, move=True))  # day 63: the spike's weekday
    assert (basis.series, basis.exact, basis.settled, basis.causes_kept) == (1, 1, 0, 0)
    assert_matches_full_analysis(wh)


def test_a_new_day_leaves_the_findings_before_it_to_the_screen(tmp_path: Path) -> None:
    """A daily delivery re-judges two mix spans of every series, but changes of the total only from
    `shift_days` - 1 days before the new day on (a step starting on it may be dated that far
    back): the spikes of the days before those stay stored, and no series needs the exact
    analysis (each spiked one did while they were re-derived)."""
    wh = Warehouse(Settings(warehouse=str(tmp_path / "wh")))
    bill = Bill(tmp_path, accounts=3, services=4, seed=7)
    keys = sorted(bill.series)
    spiked = [keys[1], keys[5], keys[9]]
    first = run(wh, bill.deliver(40, spikes=[(k, 32 + n) for n, k in enumerate(spiked)]))
    assert first.full and first.anomalies == 3

    next_day = run(wh, bill.deliver(1))
    assert (next_day.full, next_day.series, next_day.exact) == (False, 12, 0)
    assert (next_day.anomalies, next_day.added, next_day.removed) == (3, 0, 0)
    assert_matches_full_analysis(wh)


def test_a_step_a_correction_starts_is_dated_onto_the_unchanged_days_before_it(tmp_path: Path) -> None:
    """Days 43-44 raised by half (inside their band), then days 45 on corrected to x1.8: the step
    is dated on day 43, before the days the second correction changed, as a full analysis dates it
    (the walk resumes `shift_days` - 1 days before the changed ones)."""
    wh = Warehouse(Settings(warehouse=str(tmp_path / "wh")))
    bill = Bill(tmp_path, accounts=1, services=2, seed=3)
    key = sorted(bill.series)[0]
    assert run(wh, bill.deliver(60)).anomalies == 0
    assert run(wh, bill.correct([key], 43, 2, 1.5, move=False)).anomalies == 0
    step = run(wh, bill.correct([key], 45, 15, 1.8, move=False))
    assert (step.full, step.series, step.anomalies) == (False, 1, 1)
    [row] = assert_matches_full_analysis(wh)
    assert (row["kind"], row["usage_date"], row["duration_days"]) == ("step_up", START + dt.timedelta(43), 16)


@pytest.mark.parametrize("catch_up", ["run", "anomalies"])
def test_a_run_killed_after_publishing_is_caught_up_by_the_next_detection(
    tmp_path: Path, catch_up: str
) -> None:
    wh = Warehouse(Settings(warehouse=str(tmp_path / "wh")))
    bill = Bill(tmp_path, accounts=2, services=2, seed=3)
    key = sorted(bill.series)[1]
    run(wh, bill.deliver(40, spikes=[(key, 30)]))
    [spike] = assert_matches_full_analysis(wh)
    assert (spike["kind"], spike["usage_date"]) == ("spike", START + dt.timedelta(30))

    # The spike was a billing error; the run that publishes its correction dies before detection.
    crashed_run(wh, "after_commit:publish_log", bill.correct([key], 30, 1, 1 / 8, move=False))
    published, detected = runs(wh)
    assert published != detected and stored_rows(wh) == [spike]

    report = run(wh) if catch_up == "run" else update_anomalies(wh)
    assert (report.skipped, report.full, report.series) == (False, False, 1)
    assert (report.changed_days, report.removed) == ([spike["usage_date"]], 1)
    assert assert_matches_full_analysis(wh) == []
    assert runs(wh) == (published, published)


def test_when_the_older_runs_files_are_gone_every_series_is_analysed(tmp_path: Path) -> None:
    """What changed is read from the files the older run has and the newer one has not; when a
    retention policy (or a hand) removed them, detection cannot tell and analyses everything."""
    wh = Warehouse(Settings(warehouse=str(tmp_path / "wh")))
    bill = Bill(tmp_path, accounts=2, services=2, seed=3)
    key = sorted(bill.series)[1]
    run(wh, bill.deliver(40, spikes=[(key, 30)]))
    [spike] = assert_matches_full_analysis(wh)
    older = latest_manifest(wh)
    assert older is not None
    crashed_run(wh, "after_commit:publish_log", bill.correct([key], 30, 1, 1 / 8, move=False))
    wh.refresh()
    gone = set(wh.data_files(NORMALIZED, snapshot_id=older.snapshots[NORMALIZED.name])) - set(
        wh.data_files(NORMALIZED)
    )
    assert gone
    for path in gone:
        os.remove(path)

    report = update_anomalies(wh)
    assert (report.full, report.series, report.removed) == (True, 4, 1)  # 2 accounts x 2 services
    assert assert_matches_full_analysis(wh) == []


def test_an_account_whose_events_are_all_retracted_loses_its_anomalies(tmp_path: Path) -> None:
    """An account that disappears (every event retracted) has no span left: its series are still
    analysed again, from the old snapshot's list, so its anomalies go."""
    wh = Warehouse(Settings(warehouse=str(tmp_path / "wh")))
    bill = Bill(tmp_path, accounts=2, services=2, seed=3)
    keys = sorted(bill.series)
    run(wh, bill.deliver(40, spikes=[(keys[0], 30), (keys[2], 32)]))
    gone = keys[0][0]
    assert {r["account_id"] for r in assert_matches_full_analysis(wh)} == {gone, keys[2][0]}
    path = tmp_path / "retract.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(RETRACT_HEADER)
        for event in sorted(e for e in bill.events if e.startswith(gone)):
            writer.writerow([event, "", "", "", "", f"{START + dt.timedelta(days=45)} 00:00:00", "delete"])
    report = run(wh, path)
    assert not report.full
    stored = assert_matches_full_analysis(wh)
    assert stored and gone not in {r["account_id"] for r in stored}


RETRACT_HEADER = ("event_id", "usage_date", "account_id", "service_name", "cost_usd", "ingestion_ts", "op")


@pytest.mark.parametrize(("seed", "batches"), [(7, 4), (11, 6)])
def test_generated_bills_delivered_batch_by_batch_equal_a_full_analysis(
    tmp_path: Path, seed: int, batches: int
) -> None:
    """The generator's bill (injected anomalies, noisy mixes) delivered file by file: every run's
    incremental detection equals a full analysis (a mix shift dated before the day the analysis
    resumed used to stop detection here)."""
    made = generate(tmp_path / "bills", events=20_000, anomalies=6, noisy_mix=2, seed=seed, batches=batches)
    wh = Warehouse(Settings(warehouse=str(tmp_path / "wh")))
    for n, path in enumerate(made.files):
        report = run(wh, path)
        assert report.full is (n == 0)
        assert_matches_full_analysis(wh)


@pytest.mark.parametrize(
    ("stored", "idle", "stands"),
    [
        (((70, 1),), (), True),  # the stored spike lies after the settle day: the walk stops there
        (((45, 6),), (), False),  # a stored change still open on the settle day: the walk goes on
        (((30, 10),), (), False),  # a stored level shift before it: the stored walk is on another level
        # a day without charges after the settle day: a day from there may be judged on billed days
        # back to the changed one (`Sync.until`), so the walk goes on
        (((70, 1),), (58,), False),
    ],
)
def test_a_suspect_whose_candidates_lie_past_its_settle_day_stands_only_where_the_walk_would_stop(
    stored: tuple[tuple[int, int], ...], idle: tuple[int, ...], stands: bool
) -> None:
    """`resumed.stands` spares the exact walk of a series the screen flags only after its settle day; it
    must agree with that walk: no finding before it, and stopped on it in step with the stored
    analysis (`baseline.Sync`). A stored change open then, a stored level shift before it, or a day
    without charges from a window before it on, keeps the walk."""
    params, origin, n = Params(), dt.date(2025, 1, 1), 80
    values = [Decimal(100 + (i * 7) % 5) for i in range(n)]
    values[70] = Decimal(900)  # a spike past the settle day of a correction on day 20
    for i in idle:
        values[i] = Decimal(0)
    floats = np.array([[float(v) for v in values]])
    day = [origin + dt.timedelta(days=i) for i in range(n)]
    changed = Changed(day[20], day[20])
    point = Resume(
        day[6], None, day[20], day[20 + params.window + 1], tuple((day[d], k) for d, k in stored), changed
    )
    frame = Frame([("a", "s")], origin, np.array([0]), np.array([n]), np.array([0]), floats, {}, pa.table({}))
    zero, judge = np.array([0]), np.array([20])
    opens, _, bands = candidates(floats, zero, np.array([True]), params, np.array([6]), judge)
    starts = Starts(np.array([6]), zero, judge, [point])
    screens = Screens(bands, np.full((1, n), np.nan), opens)
    assert opens[0, 70] and not opens[0, :49].any()

    found = resumed.stands(np.array([True]), frame, starts, screens, params)
    walk = detect(
        values, params, begin=20, regime=0, screened=bands[0], sync=sync_for(point, origin, 0, params)
    )
    assert (found == {0: (day[20], day[49])}) is stands
    assert (walk.findings == [] and walk.settled == 49) is stands
