"""cost_anomalies in the lake: written by `costlake run`, updated day by day, removed when corrected."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from costlake.anomalies.job import update_anomalies
from costlake.lake.warehouse import Warehouse
from costlake.synthetic.generate import generate
from costlake.synthetic.injection import read_truth
from costlake.tables import COST_ANOMALIES
from helpers import NATIVE_TS_HEADER, cli, ingest_and_run, query_rows

START = dt.date(2025, 1, 1)


def _rows(days: int, spike_day: int | None = None, spike: str = "900") -> list[list[str]]:
    rows = []
    for i in range(days):
        day = (START + dt.timedelta(days=i)).isoformat()
        for account, level in (("111111111111", 200), ("222222222222", 80)):
            cost = spike if (i == spike_day and account == "111111111111") else str(level + (i * 7) % 5)
            rows.append([f"{account}-{i}", day, account, "AmazonEC2", cost, day])
    return rows


def test_run_writes_anomalies_and_a_correction_removes_exactly_that_day(
    make_wh: Callable[..., Warehouse], write_csv: Callable[..., Path]
) -> None:
    wh = make_wh()
    _, report = ingest_and_run(wh, write_csv("bill.csv", _rows(40, spike_day=30)))
    assert report.anomalies is not None and report.anomalies.anomalies == 1
    [row] = query_rows(wh, "SELECT * FROM cost_anomalies")
    assert (row["account_id"], row["usage_date"], row["kind"]) == (
        "111111111111",
        START + dt.timedelta(30),
        "spike",
    )
    assert str(row["actual_usd"]) == "900.000000000000"
    first = wh.table(COST_ANOMALIES).current_snapshot()

    # An idle run leaves the anomalies alone.
    _, idle = ingest_and_run(wh)
    assert idle.anomalies is not None and idle.anomalies.skipped
    assert wh.table(COST_ANOMALIES).current_snapshot().snapshot_id == first.snapshot_id

    # The spike was a billing error: its re-delivery removes the anomaly, only on that day.
    fixed = [r for r in _rows(40) if r[0] == "111111111111-30"]
    fixed[0][5] = (START + dt.timedelta(41)).isoformat()
    _, corrected = ingest_and_run(wh, write_csv("fix.csv", fixed))
    assert corrected.anomalies is not None
    assert corrected.anomalies.changed_days == [START + dt.timedelta(30)]
    assert (corrected.anomalies.added, corrected.anomalies.removed) == (0, 1)
    assert query_rows(wh, "SELECT * FROM cost_anomalies") == []
    assert update_anomalies(wh).changed_days == []  # recomputing again changes nothing


def test_runs_on_an_empty_lake_commit_no_anomalies(make_wh: Callable[..., Warehouse]) -> None:
    wh = make_wh()
    for _ in range(3):
        report = ingest_and_run(wh)[1]
        assert report.anomalies is not None
    assert len(wh.snapshots(COST_ANOMALIES)) <= 1  # at most the first marker, then nothing


@pytest.mark.slow
def test_injected_anomalies_are_found_with_their_cause(
    tmp_path: Path, make_wh: Callable[..., Warehouse]
) -> None:
    made = generate(
        tmp_path / "data", events=60_000, days=70, tenants=1, accounts_per_tenant=3, anomalies=5, seed=3
    )
    assert made.truth_file is not None
    truth = read_truth(made.truth_file)
    assert sorted(t["kind"] for t in truth) == ["drop", "new_service", "region_shift", "spike", "step_up"]
    wh = make_wh()
    ingest_and_run(wh, *made.files)
    found = {
        (r["account_id"], r["service_name"]): r
        for r in query_rows(wh, "SELECT * FROM cost_anomalies ORDER BY usage_date")
    }
    hits = 0
    for t in truth:
        row = found.get((t["account_id"], t["service_name"]))
        if row is None:
            continue
        lag = (row["usage_date"] - dt.date.fromisoformat(t["start_date"])).days
        hits += 0 <= lag <= 1 and row["kind"] == t["expected_kind"]
        assert json.loads(row["contributors"]), "every anomaly carries its contributors"
    assert hits >= 4
    amounts = [
        c[field]
        for row in found.values()
        for c in json.loads(row["contributors"])
        for field in ("actual_usd", "expected_usd", "contribution_usd")
    ]
    plain = re.compile(r"-?\d+(\.\d+)?")  # as every amount is written: a zero was "0E-12"
    assert amounts and [a for a in amounts if not plain.fullmatch(a)] == []


@pytest.mark.slow
def test_cli_anomalies_and_plot(tmp_path: Path, write_csv: Callable[..., Path]) -> None:
    wh = tmp_path / "wh"
    bill = write_csv("bill.csv", _rows(40, spike_day=33))
    assert cli(wh, "ingest", str(bill)).returncode == 0
    assert cli(wh, "run").returncode == 0
    listed = cli(wh, "anomalies", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert (row["usage_date"], row["kind"], row["impact_usd"]) == ("2025-02-03", "spike", "697.50")
    dod = cli(wh, "anomalies", "--method", "day_over_day", "--format", "json")
    assert dod.returncode == 0 and len(json.loads(dod.stdout)) == 2  # up, then back down

    png = tmp_path / "chart" / "ec2.png"
    made = cli(wh, "plot", "--account", "111111111111", "--service", "amazonec2", "--out", str(png))
    assert made.returncode == 0, made.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = png.with_suffix(".html").read_text()
    assert "<svg" in page and "2025-02-03" in page and "spike" in page
    text = cli(wh, "plot", "--account", "111111111111", "--out", str(tmp_path / "chart.txt"))
    assert text.returncode == 1 and "the chart is a PNG, name it *.png" in text.stderr
    assert not (tmp_path / "chart.txt").exists() and not (tmp_path / "chart.html").exists()
    missing = cli(wh, "plot", "--account", "999")
    assert missing.returncode == 1 and "no published cost for account '999'" in missing.stderr
    assert cli(wh, "anomalies", "--method", "nope").returncode == 1


def test_detection_on_run_can_be_turned_off(
    make_wh: Callable[..., Warehouse], write_csv: Callable[..., Path]
) -> None:
    wh = make_wh(anomalies_on_run=False)
    _, report = ingest_and_run(wh, write_csv("bill.csv", _rows(40, spike_day=30)))
    assert report.anomalies is None and wh.snapshots(COST_ANOMALIES) == []
    assert update_anomalies(wh).anomalies == 1  # `costlake anomalies` still does it on its own


def test_a_usage_type_is_a_root_cause_where_the_source_has_one(
    make_wh: Callable[..., Warehouse], write_csv: Callable[..., Path]
) -> None:
    """A spike carried by one usage type names it among the causes; a bill without usage types has
    no usage-type cause (no "(none)" value)."""
    header = (*NATIVE_TS_HEADER, "usage_type")
    rows = []
    for i in range(40):
        day = (START + dt.timedelta(days=i)).isoformat()
        rows.append(
            [f"a-{i}", day, "111111111111", "AmazonEC2", str(200 + (i * 7) % 5), day, "BoxUsage:m5.large"]
        )
        if i == 30:
            rows.append([f"b-{i}", day, "111111111111", "AmazonEC2", "700", day, "DataTransfer-Out-Bytes"])
    typed = make_wh()
    ingest_and_run(typed, write_csv("typed.csv", rows, header=header))
    [row] = query_rows(typed, "SELECT * FROM cost_anomalies")
    causes = {(c["dimension"], c["value"]) for c in json.loads(row["contributors"])}
    assert ("usage_type", "DataTransfer-Out-Bytes") in causes

    plain = make_wh()
    ingest_and_run(plain, write_csv("plain.csv", [r[:-1] for r in rows], header=header[:-1]))
    [row] = query_rows(plain, "SELECT * FROM cost_anomalies")
    assert all(c["dimension"] != "usage_type" for c in json.loads(row["contributors"]))


def test_a_run_that_only_catches_up_the_anomalies_says_so(
    tmp_path: Path, write_csv: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing new to publish, but a changed threshold: the run re-analyses every series and says so."""
    wh = tmp_path / "wh"
    assert cli(wh, "ingest", str(write_csv("bill.csv", _rows(40, spike_day=30)))).returncode == 0
    first = cli(wh, "run")
    assert "anomalies: 1 anomalies; 2 series re-analysed (every series" in first.stdout
    monkeypatch.setenv("COSTLAKE_ANOMALY_MIN_IMPACT_USD", "1000")
    again = cli(wh, "run")
    assert again.returncode == 0 and "nothing new to publish" in again.stdout
    assert "anomalies: 0 anomalies; 2 series re-analysed (every series" in again.stdout
    assert "(+0 / -1)" in again.stdout
    monkeypatch.delenv("COSTLAKE_ANOMALY_MIN_IMPACT_USD")
    listed = cli(wh, "anomalies", "--full")
    assert "1 anomalies; 2 series re-analysed (every series" in listed.stdout


def test_the_listing_shows_amounts_of_any_size(tmp_path: Path, write_csv: Callable[..., Path]) -> None:
    """A spike of $999,999,999,999,999,999 (the largest amount a row may carry: sums must fit the
    lake's 26 integer digits) and its huge percentage list without error."""
    wh = tmp_path / "wh"
    assert (
        cli(wh, "ingest", str(write_csv("bill.csv", _rows(40, spike_day=30, spike="9" * 18)))).returncode == 0
    )
    assert cli(wh, "run").returncode == 0
    listed = cli(wh, "anomalies", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert row["actual_usd"] == "999999999999999999.00"


def test_detection_gives_the_objects_it_set_aside_back_to_the_collector(
    make_wh: Callable[..., Warehouse], write_csv: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Detection sets the process's older objects aside from the garbage collector (`gc.freeze`)
    and gives them back after, whether it finishes or fails."""
    import gc

    import costlake.anomalies.job as job

    wh = make_wh()
    ingest_and_run(wh, write_csv("bill.csv", _rows(30, spike_day=25)))
    held = []
    real = job._update

    def watched(*args: object) -> object:
        held.append(gc.get_freeze_count())
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(job, "_update", watched)
    before = gc.get_freeze_count()
    update_anomalies(wh, full=True)
    assert held[-1] > before and gc.get_freeze_count() == before

    with pytest.raises(RuntimeError, match="detection failed"), job._older_objects_frozen():
        assert gc.get_freeze_count() > before
        raise RuntimeError("detection failed")
    assert gc.get_freeze_count() == before
    # A process that froze objects itself keeps them frozen.
    gc.freeze()
    try:
        mine = gc.get_freeze_count()
        update_anomalies(wh, full=True)
        assert gc.get_freeze_count() > mine // 2  # not released (some frozen objects die meanwhile)
    finally:
        gc.unfreeze()
