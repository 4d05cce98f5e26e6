"""`costlake runs list|show`: each finished run's batches, days, held-back days, warnings and
partitions, read back from the lake's own records, through the API and the command line."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from costlake.errors import InputError
from costlake.lake.warehouse import Warehouse
from costlake.ops.runs import list_runs, show_run
from costlake.pipeline.rebuild import STAGES
from costlake.settings import Settings
from helpers import SEED, cli, empty_warehouse, ingest_and_run, query_rows

DAY1, DAY2 = dt.date(2025, 1, 1), dt.date(2025, 1, 2)
STAGE_TABLES = [tdef for tdef, _ in STAGES]


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """Three runs: the seed; a negative day held back by the gate (severity error) while another
    day is published; the fix. Returns the warehouse folder and the batch ids in order (the
    tests only read it)."""
    tmp = tmp_path_factory.mktemp("history")
    root = tmp / "wh"
    strict = Warehouse(Settings(warehouse=str(root), negative_daily_total="error"))
    batches = [r.batch_id for r in ingest_and_run(strict, SEED)[0]]
    bad = _csv(
        tmp / "bad.csv",
        ["e2,2025-01-01,A1,S3,-50,2025-01-04", "e4,2025-01-02,A1,EC2,9,2025-01-04"],
    )
    results, report = ingest_and_run(strict, bad)
    assert report.held_back == [DAY1]
    batches += [r.batch_id for r in results]
    fix = _csv(tmp / "fix.csv", ["e2,2025-01-01,A1,S3,6,2025-01-05"])
    batches += [r.batch_id for r in ingest_and_run(strict, fix)[0]]
    return root, batches


def _csv(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join([SEED.read_text().splitlines()[0], *lines]) + "\n")
    return path


def test_each_run_lists_its_new_batches_days_and_held_back_days(history) -> None:
    root, batches = history
    wh = Warehouse(Settings(warehouse=str(root)))
    runs = list_runs(wh)
    assert [r.batches for r in runs] == [[batches[0]], [batches[1]], [batches[2]]]
    assert [r.watermark for r in runs] == [1, 2, 3]
    assert [(r.days_committed, r.days_held_back) for r in runs] == [(2, 0), (1, 1), (1, 0)]
    logged = query_rows(wh, "SELECT DISTINCT run_id FROM publish_log")
    assert {r.run_id for r in runs} == {row["run_id"] for row in logged}
    for earlier, later in zip(runs, runs[1:], strict=False):
        assert earlier.finished_at <= later.finished_at
    for r in runs:
        assert r.started_at is not None and r.started_at <= r.finished_at
        assert r.duration_s is not None and 0 <= r.duration_s < 300
        assert r.snapshots["daily_account_cost"] is not None


def test_show_gives_every_partition_with_its_hash_and_the_gates_reason(history) -> None:
    root, batches = history
    wh = Warehouse(Settings(warehouse=str(root)))
    held_run = list_runs(wh)[1]
    summary, parts = show_run(wh, held_run.run_id)
    assert summary == held_run
    logged = query_rows(
        wh,
        "SELECT table_name, usage_date, gate_status, row_count, content_hash FROM publish_log "
        f"WHERE run_id = '{held_run.run_id}' ORDER BY table_name, usage_date",
    )
    assert [(p.table, p.usage_date, p.status, p.rows, p.content_hash) for p in parts] == [
        (r["table_name"], r["usage_date"], r["gate_status"], r["row_count"], r["content_hash"])
        for r in logged
    ]
    held = [p for p in parts if p.status == "held_back"]
    assert {p.table for p in held} == {t.name for t in STAGE_TABLES} and {p.usage_date for p in held} == {
        DAY1
    }
    assert all(p.reason.startswith("error negative_daily_total:") for p in held)
    assert all(p.reason == "" for p in parts if p.usage_date == DAY2)
    assert all(batches[1] in p.batches for p in parts)


def test_a_run_is_named_by_a_unique_prefix_and_a_wrong_name_is_one_line(history) -> None:
    root, _ = history
    wh = Warehouse(Settings(warehouse=str(root)))
    runs = list_runs(wh)
    assert show_run(wh, runs[2].run_id[:-3])[0] == runs[2]
    with pytest.raises(InputError, match=r"names 3 runs; give more of the run id"):
        show_run(wh, runs[0].run_id[:4])  # the year every run id starts with
    with pytest.raises(InputError, match=r"unknown run id 'nope'; recent runs: ") as caught:
        show_run(wh, "nope")
    assert "\n" not in str(caught.value)
    with pytest.raises(
        InputError, match=r"unknown run id 'x{80}… \(100,000 characters\)'; recent runs: "
    ) as long:
        show_run(wh, "x" * 100_000)
    assert len(str(long.value)) < 300


def test_warnings_count_once_per_day_and_an_interrupted_run_is_covered(
    tmp_path: Path, write_csv, monkeypatch
) -> None:
    """A warning day is published and counted once (not once per stage table); a run killed before
    its manifest is not listed, and the run that finishes its commits says so."""
    root = tmp_path / "wh"
    wh = Warehouse(Settings(warehouse=str(root)))
    ingest_and_run(wh, SEED)
    bad = write_csv("neg.csv", [["e2", "2025-01-01", "A1", "S3", "-50", "2025-01-04"]])
    assert cli(root, "ingest", str(bad)).returncode == 0
    monkeypatch.setenv("COSTLAKE_CRASH_AT", "before_commit:publish_log")
    assert cli(root, "run").returncode == 86
    monkeypatch.delenv("COSTLAKE_CRASH_AT")
    assert cli(root, "run").returncode == 0
    runs = list_runs(Warehouse(Settings(warehouse=str(root))))
    assert len(runs) == 2
    last = runs[-1]
    assert last.gate_warnings == 1 and last.days_held_back == 0
    assert [b.split("-")[0] for b in last.batches] == ["b000002"]  # read first by the run that died
    assert len(last.covers) == 1 and last.covers[0] not in {r.run_id for r in runs}
    shown = cli(root, "runs", "show", last.run_id)
    assert shown.returncode == 0, shown.stderr
    assert f"finished the commits of interrupted run(s): {last.covers[0]}" in shown.stdout
    assert "published_with_warnings" in shown.stdout and "warning negative_daily_total" in shown.stdout


def test_the_cli_lists_newest_first_as_a_table_or_json(history) -> None:
    root, batches = history
    listed = cli(root, "runs", "list", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    runs = json.loads(listed.stdout)
    assert [r["batches"] for r in runs] == [[batches[2]], [batches[1]], [batches[0]]]
    assert [r["days_held_back"] for r in runs] == [0, 1, 0]
    assert all(r["finished_at"].endswith("Z") and r["duration_s"] >= 0 for r in runs)
    newest = cli(root, "runs", "list", "--limit", "1")
    assert newest.returncode == 0 and runs[0]["run_id"] in newest.stdout
    assert runs[1]["run_id"] not in newest.stdout and "1 of 3 runs shown" in newest.stdout
    shown = cli(root, "runs", "show", runs[1]["run_id"], "--format", "json")
    detail = json.loads(shown.stdout)
    assert detail["run_id"] == runs[1]["run_id"] and detail["batches"] == [batches[1]]
    held = [p for p in detail["partitions"] if p["status"] == "held_back"]
    assert len(held) == len(STAGE_TABLES) and all(p["usage_date"] == "2025-01-01" for p in held)
    assert held[0]["findings"][0]["check"] == "negative_daily_total"
    table = cli(root, "runs", "show", runs[1]["run_id"][:-2])
    assert table.returncode == 0 and "held_back" in table.stdout and "negative_daily_total" in table.stdout


def test_the_cli_says_so_when_nothing_has_run_and_refuses_bad_options(tmp_path: Path) -> None:
    root = empty_warehouse(tmp_path / "empty")
    empty = cli(root, "runs", "list")
    assert empty.returncode == 0 and "no run has finished yet" in empty.stdout
    assert json.loads(cli(root, "runs", "list", "--format", "json").stdout) == []
    for args, message in (
        (("runs", "list", "--format", "csv"), "--format must be table or json, not 'csv'"),
        (("runs", "list", "--limit", "-1"), "--limit must be 0 (every run) or more, not -1"),
        (("runs", "show", "x"), "unknown run id 'x'; no run has finished yet"),
    ):
        done = cli(root, *args)
        assert done.returncode == 1 and done.stderr.strip() == f"error: {message}", done.stderr
