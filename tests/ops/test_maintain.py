"""`costlake maintain` and snapshot expiry by others: what a retained run needs stays (`--as-of`,
`audit verify`, the batch registry), the rest goes, and the lake keeps working afterwards."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import time
from pathlib import Path

import pytest

from costlake.catalog.views import run_query
from costlake.errors import InputError
from costlake.lake.manifest import manifest_for, manifests
from costlake.lake.retention import KEEP_MARK
from costlake.lake.warehouse import Warehouse
from costlake.ops.maintain import Policy, maintain
from costlake.ops.runs import list_runs
from costlake.pipeline.audit import verify
from costlake.pipeline.ingest import ingest_files
from costlake.pipeline.run import run_pipeline
from costlake.settings import Settings
from costlake.tables import DAILY_ACCOUNT, INGEST_BATCHES, PUBLISH_LOG, RAW, TABLE_PROPERTIES, TABLES
from helpers import SEED, cli, ingest_and_run

TOTALS = "SELECT account_id, usage_date, total_cost_usd FROM daily_account_cost ORDER BY 1, 2"
KEEP_TWO = Policy(retain_days=0, retain_runs=2, orphan_hours=0)


def _batch(folder: Path, name: str, lines: list[str]) -> Path:
    path = folder / name
    path.write_text("\n".join([SEED.read_text().splitlines()[0], *lines]) + "\n")
    return path


def _lake(tmp_path: Path) -> tuple[Warehouse, list[Path]]:
    """Four finished runs: the seed, a correction, a new day, a backfill of the first two days."""
    wh = Warehouse(Settings(warehouse=str(tmp_path / "wh")))
    files = [
        SEED,
        _batch(tmp_path, "fix.csv", ["e2,2025-01-01,A1,S3,6.5,2025-01-05"]),
        _batch(
            tmp_path, "day3.csv", ["e5,2025-01-03,A2,S3,4.25,2025-01-05", "e6,2025-01-03,A1,EC2,3,2025-01-05"]
        ),
    ]
    for path in files:
        ingest_and_run(wh, path)
    run_pipeline(wh, backfill=(dt.date(2025, 1, 1), dt.date(2025, 1, 2)))
    return wh, files


def _as_of_everything(wh: Warehouse) -> dict[str, list[dict[str, object]]]:
    return {m.run_id: run_query(wh, TOTALS, m.run_id).to_pylist() for m in manifests(wh)}


def _log_rows(wh: Warehouse) -> list[tuple[object, ...]]:
    wh.refresh()
    return sorted(tuple(r.values()) for r in wh.read_rows(PUBLISH_LOG).to_pylist())


def _snapshot_counts(wh: Warehouse) -> dict[str, int]:
    wh.refresh()
    return {name: len(wh.snapshots(tdef)) for name, tdef in TABLES.items()}


def _files(root: Path) -> dict[str, int]:
    return {str(p): p.stat().st_size for p in root.rglob("*") if p.is_file() and p.name != ".costlake.lock"}


def test_maintain_keeps_what_retained_runs_need_and_the_lake_goes_on(tmp_path: Path) -> None:
    wh, files = _lake(tmp_path)
    before = _as_of_everything(wh)
    runs = list(before)
    assert len(runs) == 3  # the backfill changed nothing, so it left no record
    log_before = _log_rows(wh)
    report = maintain(wh, KEEP_TWO)
    assert report.retained == runs[1:] and report.expired_runs == runs[:1]
    # The publish log (a file per run) is one file now, with the same rows.
    assert report.compacted == {PUBLISH_LOG.name: 3, INGEST_BATCHES.name: 3}
    # The first batch's raw snapshot goes too: no retained run reads it, and the registry is a table.
    assert [len(t.snapshots) for t in report.tables if t.table == RAW.name] == [1]
    assert len(Warehouse(wh.settings).data_files(PUBLISH_LOG)) == 1 and _log_rows(wh) == log_before
    assert report.snapshots > 0 and report.orphans.files > 0 and report.freed_bytes > 0
    wh = Warehouse(wh.settings)
    assert [m.run_id for m in manifests(wh)] == runs[1:]
    assert {run: run_query(wh, TOTALS, run).to_pylist() for run in runs[1:]} == {
        r: before[r] for r in runs[1:]
    }
    audit = verify(wh)
    assert not audit.mismatches and audit.runs == runs[1:] and audit.past_retention == 1
    with pytest.raises(
        InputError, match=r"is past the lake's retention \(runs of the last 0 day\(s\) and the newest 2"
    ):
        manifest_for(wh, runs[0])
    # Every file the retained runs read is still there.
    for m in manifests(wh):
        for name, snapshot in m.snapshots.items():
            if snapshot is not None:
                assert all(Path(f).exists() for f in wh.data_files(TABLES[name], snapshot_id=snapshot))
    # The registry survives: an old file is recognised; new data and a backfill publish as before.
    assert ingest_files(wh, [files[0]])[0].skipped
    ingest_and_run(wh, _batch(tmp_path, "day4.csv", ["e7,2025-01-04,A1,S3,2,2025-01-06"]))
    run_pipeline(wh, backfill=(dt.date(2025, 1, 1), dt.date(2025, 1, 4)))
    totals = {
        (r["account_id"], str(r["usage_date"])): str(r["total_cost_usd"])
        for r in run_query(wh, TOTALS).to_pylist()
    }
    assert totals == {
        ("A1", "2025-01-01"): "18.500000000000",
        ("A1", "2025-01-02"): "8.000000000000",
        ("A1", "2025-01-03"): "3.000000000000",
        ("A1", "2025-01-04"): "2.000000000000",
        ("A2", "2025-01-01"): "7.000000000000",
        ("A2", "2025-01-03"): "4.250000000000",
    }
    assert not verify(wh).mismatches


def test_a_dry_run_changes_nothing_and_says_what_the_real_one_removes(tmp_path: Path) -> None:
    wh, _ = _lake(tmp_path)
    counts, files = _snapshot_counts(wh), _files(wh.root)
    dry = maintain(wh, KEEP_TWO, dry_run=True)
    assert _snapshot_counts(wh) == counts and _files(wh.root) == files
    real = maintain(Warehouse(wh.settings), KEEP_TWO)
    assert [len(t.snapshots) for t in dry.tables] == [len(t.snapshots) for t in real.tables]
    assert sorted(dry.orphans.paths) == sorted(real.orphans.paths)
    assert all(not Path(p).exists() for p in real.orphans.paths)
    assert maintain(Warehouse(wh.settings), KEEP_TWO).snapshots == 0  # nothing left to do


def test_expiry_by_another_engine_keeps_every_run_audit_and_the_registry(tmp_path: Path) -> None:
    """A third party runs PyIceberg's own expire_snapshots on every table: costlake's tags keep
    what its runs published, so every run still reads and verifies, and old files are recognised."""
    wh, files = _lake(tmp_path)
    before = _as_of_everything(wh)
    for tdef in TABLES.values():
        table = wh.catalog.load_table(wh.table(tdef).name())
        table.maintenance.expire_snapshots().older_than(dt.datetime.now(dt.UTC)).commit()
    wh = Warehouse(wh.settings)
    assert _as_of_everything(wh) == before
    audit = verify(wh)
    assert not audit.mismatches and len(audit.runs) == len(before) and audit.past_retention == 0
    assert all(r.skipped for r in ingest_files(wh, files))
    report = run_pipeline(wh)
    assert not report.changed and not report.held_back  # nothing new, nothing to recover
    # Even with its tags dropped and every old snapshot expired, the raw table forgets no batch.
    raw = wh.catalog.load_table(wh.table(RAW).name())
    with raw.manage_snapshots() as manage:
        for name in list(raw.metadata.refs):
            if name != "main":
                manage.remove_tag(name)
    raw.maintenance.expire_snapshots().older_than(dt.datetime.now(dt.UTC)).commit()
    wh = Warehouse(wh.settings)
    assert len(wh.snapshots(RAW)) == 1
    assert all(r.skipped for r in ingest_files(wh, files))
    assert run_query(wh, "SELECT count(*) AS n FROM ingest_batches").column("n").to_pylist() == [len(files)]


def test_old_unreferenced_files_go_young_ones_and_marked_run_folders_stay(tmp_path: Path) -> None:
    wh, _ = _lake(tmp_path)
    data = wh.staging_root(DAILY_ACCOUNT)
    old, young = data / "stray-old.parquet", data / "stray-young.parquet"
    for path in (old, young):
        path.write_bytes(b"not referenced")
    hour_ago = time.time() - 3600
    os.utime(old, (hour_ago, hour_ago))
    maintain(wh, Policy(retain_days=400, retain_runs=0, orphan_hours=0.5))
    assert not old.exists() and young.exists()
    # A run whose snapshots were expired keeps its folder (its files are in use); the next run
    # removes only folders of runs that never committed.
    maintain(Warehouse(wh.settings), KEEP_TWO)
    marked = [p.parent for p in data.glob(f"run_id=*/{KEEP_MARK}")]
    assert marked
    run_pipeline(Warehouse(wh.settings), backfill=(dt.date(2025, 1, 1), dt.date(2025, 1, 3)))
    assert all(folder.is_dir() for folder in marked)
    assert len(run_query(Warehouse(wh.settings), TOTALS).to_pylist()) == 5


def test_maintain_waits_for_an_interrupted_run_to_be_finished(tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "wh"
    wh = Warehouse(Settings(warehouse=str(root)))
    ingest_and_run(wh, SEED)
    assert (
        cli(
            root, "ingest", str(_batch(tmp_path, "more.csv", ["e9,2025-01-02,A2,EC2,1,2025-01-04"]))
        ).returncode
        == 0
    )
    monkeypatch.setenv("COSTLAKE_CRASH_AT", "before_commit:publish_log")
    assert cli(root, "run").returncode == 86
    monkeypatch.delenv("COSTLAKE_CRASH_AT")
    refused = cli(root, "maintain")
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "error: a run was interrupted and is not finished yet: run `costlake run` first, then maintain"
    )
    assert cli(root, "run").returncode == 0
    done = cli(root, "maintain", "--retain-runs", "1", "--retain-days", "0", "--format", "json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["runs_retained"] == 1 and summary["runs_expired"] == 1 and summary["bytes_freed"] > 0
    assert len(manifests(Warehouse(wh.settings))) == 1
    assert summary["snapshots_expired"][RAW.name] == 1  # the first batch's: the registry is a table
    assert "already ingested" in cli(root, "ingest", str(SEED)).stdout
    audit = cli(root, "audit", "verify")
    assert audit.returncode == 0 and "1 run(s) past retention" in audit.stdout


def test_a_maintenance_killed_after_the_publish_log_leaves_no_run_without_its_snapshots(
    tmp_path: Path, monkeypatch
) -> None:
    """Manifests go first: killed between tables, every run still listed reads and verifies; the
    expired ones are past retention; the next maintenance expires what is left."""
    wh, _ = _lake(tmp_path)
    runs = [m.run_id for m in manifests(wh)]
    monkeypatch.setenv("COSTLAKE_CRASH_AT", f"maintain:after_expire:{PUBLISH_LOG.name}")
    killed = cli(wh.root, "maintain", "--retain-runs", "1", "--retain-days", "0", "--orphan-hours", "0")
    assert killed.returncode == 86
    monkeypatch.delenv("COSTLAKE_CRASH_AT")
    wh = Warehouse(wh.settings)
    assert [m.run_id for m in manifests(wh)] == runs[-1:]
    audit = verify(wh)
    assert not audit.mismatches and audit.past_retention == 2
    with pytest.raises(InputError, match="is past the lake's retention"):
        manifest_for(wh, runs[0])
    shown = cli(wh.root, "runs", "show", runs[0])
    assert shown.returncode == 1 and "is past the lake's retention" in shown.stderr
    assert maintain(wh, Policy(0, 1, 0)).snapshots > 0  # the other tables' leftovers
    assert not verify(Warehouse(wh.settings)).mismatches


def test_a_copied_warehouse_and_impossible_values_are_refused_before_any_change(tmp_path: Path) -> None:
    wh, _ = _lake(tmp_path)
    copy = tmp_path / "copy"
    shutil.copytree(wh.root, copy)
    counts, files = _snapshot_counts(wh), _files(wh.root)
    for args in (("maintain", "--retain-days", "0", "--orphan-hours", "0"), ("ingest", str(SEED)), ("run",)):
        refused = cli(copy, *args)
        assert refused.returncode == 1, refused.stderr
        line = refused.stderr.strip()
        assert line.startswith("error: raw_billing_events lives in ") and "\n" not in line
        assert line.endswith("(a copied warehouse? Iceberg keeps absolute paths): nothing was changed")
    for args, message in (
        (("--retain-days", "99999999"), "--retain-days (retain_days) must be 0 to 36500, not 99999999"),
        (("--orphan-hours", "inf"), "--orphan-hours (orphan_hours) must be 0 to 876,000, not inf"),
    ):
        done = cli(wh.root, "maintain", *args)
        assert done.returncode == 1 and done.stderr.strip() == f"error: {message}", done.stderr
    assert _snapshot_counts(wh) == counts and _files(wh.root) == files


def test_a_runs_batches_stay_the_same_after_maintenance(tmp_path: Path) -> None:
    """A batch all of whose rows were quarantined is still counted with the run that read it,
    whether or not the run before it is past retention."""
    wh, _ = _lake(tmp_path)
    ingest_and_run(wh, _batch(tmp_path, "bad.csv", ["e8,notadate,A1,EC2,1,2025-01-05"]))
    ingest_and_run(wh, _batch(tmp_path, "day5.csv", ["e9,2025-01-05,A1,EC2,1,2025-01-06"]))
    before = {r.run_id: r.batches for r in list_runs(wh)}
    maintain(wh, Policy(0, 1, 0))
    after = {r.run_id: r.batches for r in list_runs(Warehouse(wh.settings))}
    assert after == {run: before[run] for run in after} and len(after) == 1


def test_a_maintenance_killed_between_a_tables_expiry_and_the_next_loses_no_file(
    tmp_path: Path, monkeypatch
) -> None:
    """The folders of runs whose snapshots a table expires are marked before the expiry: killed
    right after it, the next maintenance and the next `run` keep every file the lake still reads."""
    wh, _ = _lake(tmp_path)
    monkeypatch.setenv("COSTLAKE_CRASH_AT", f"maintain:after_expire:{DAILY_ACCOUNT.name}")
    assert (
        cli(wh.root, "maintain", "--retain-runs", "1", "--retain-days", "0", "--orphan-hours", "0").returncode
        == 86
    )
    monkeypatch.delenv("COSTLAKE_CRASH_AT")
    maintain(Warehouse(wh.settings), Policy(0, 1, 0))
    more = _batch(tmp_path, "day4.csv", ["e7,2025-01-04,A1,S3,2,2025-01-06"])
    assert cli(wh.root, "ingest", str(more)).returncode == 0
    ran = cli(wh.root, "run")
    assert ran.returncode == 0, ran.stderr
    assert len(run_query(Warehouse(wh.settings), TOTALS).to_pylist()) == 6
    assert not verify(Warehouse(wh.settings)).mismatches


def test_a_maintenance_killed_inside_the_metadata_log_trim_restores_the_users_setting_next_time(
    tmp_path: Path, monkeypatch
) -> None:
    """The trim holds `previous-versions-max` at 1 for one commit; killed there, the table names the
    user's value, and the next maintenance puts it back instead of keeping 1 for ever. Tables made
    before the manifest-merge settings get them."""
    from costlake.lake.retention import RESTORE, VERSIONS_KEPT

    wh, _ = _lake(tmp_path)
    for tdef in TABLES.values():  # and without the merge settings, as tables made before them
        with wh.table(tdef).transaction() as tx:
            tx.set_properties({VERSIONS_KEPT: "7"})
            tx.remove_properties(*TABLE_PROPERTIES)
    monkeypatch.setenv("COSTLAKE_CRASH_AT", "maintain:trim_metadata_log")
    killed = cli(wh.root, "maintain", "--retain-runs", "1", "--retain-days", "0", "--orphan-hours", "0")
    assert killed.returncode == 86
    monkeypatch.delenv("COSTLAKE_CRASH_AT")
    wh = Warehouse(wh.settings)
    held = [t for t in TABLES.values() if RESTORE in wh.table(t).properties]
    assert len(held) == 1 and wh.table(held[0]).properties[VERSIONS_KEPT] == "1"
    assert wh.table(held[0]).properties[RESTORE] == "7"
    maintain(wh, Policy(0, 1, 0))
    wh = Warehouse(wh.settings)
    for tdef in TABLES.values():
        props = wh.table(tdef).properties
        assert props[VERSIONS_KEPT] == "7" and RESTORE not in props, tdef.name
        assert TABLE_PROPERTIES.items() <= props.items(), tdef.name
    assert not verify(wh).mismatches


def test_an_audit_beside_a_maintenance_counts_the_runs_it_expired_as_past_retention(tmp_path: Path) -> None:
    """Readers take no lock: an audit stopped after replaying its first run, while a maintenance
    expires every run but the last, then goes on, reads no removed file and exits 0."""
    import signal
    import subprocess
    import sys

    wh, _ = _lake(tmp_path)
    runs = [m.run_id for m in manifests(wh)]
    env = {**os.environ, "COSTLAKE_SIGNAL_AT": "files_written:STOP"}
    audit = subprocess.Popen(
        [sys.executable, "-m", "costlake", "--warehouse", str(wh.root), "audit", "verify"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip

    def stopped() -> bool:  # stopped at `files_written`, once per run it replays
        state = Path(f"/proc/{audit.pid}/stat").read_text().split(") ")[1][0]
        return state == "T"

    deadline = time.monotonic() + 120
    while not stopped():
        assert audit.poll() is None and time.monotonic() < deadline, audit.communicate()
        time.sleep(0.05)
    assert maintain(Warehouse(wh.settings), Policy(0, 1, 0)).snapshots > 0
    while audit.poll() is None and time.monotonic() < deadline + 180:
        if stopped():
            os.kill(audit.pid, signal.SIGCONT)
        time.sleep(0.05)
    out, err = audit.communicate(timeout=60)
    assert audit.returncode == 0, (out, err)
    assert "of 1 run(s): 0 mismatch(es)" in out and f"{len(runs) - 1} run(s) past retention" in out, out


def test_detection_after_the_run_its_anomalies_reflect_was_expired_warns_and_analyses_all(
    tmp_path: Path, monkeypatch
) -> None:
    root = tmp_path / "wh"
    assert cli(root, "ingest", str(SEED)).returncode == 0 and cli(root, "run").returncode == 0
    assert (
        cli(
            root, "ingest", str(_batch(tmp_path, "more.csv", ["e9,2025-01-02,A2,EC2,1,2025-01-04"]))
        ).returncode
        == 0
    )
    monkeypatch.setenv("COSTLAKE_ANOMALIES_ON_RUN", "false")  # the anomalies still reflect the first run
    assert cli(root, "run").returncode == 0
    monkeypatch.delenv("COSTLAKE_ANOMALIES_ON_RUN")
    done = cli(root, "maintain", "--retain-runs", "1", "--retain-days", "0")
    assert done.returncode == 0, done.stderr
    detected = cli(root, "anomalies")
    assert detected.returncode == 0
    assert "is no longer kept (maintain expired it): analysing every series" in detected.stderr
