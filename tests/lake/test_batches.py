"""The batch registry is the `ingest_batches` table: an ingestion stopped between its raw commit and
its registry row loses nothing, and the registry outlives every raw snapshot."""

from __future__ import annotations

from pathlib import Path

from costlake.lake.batches import registered_batches, unregistered
from costlake.lake.faults import EXIT_CODE
from costlake.lake.warehouse import Warehouse
from costlake.settings import Settings
from costlake.tables import INGEST_BATCHES
from helpers import SEED, cli, query_rows

DAILY = "SELECT account_id, CAST(usage_date AS VARCHAR) AS day, total_cost_usd FROM daily_account_cost"


def _registry_rows(wh: Warehouse) -> list[int]:
    wh.refresh()
    return sorted(wh.read_rows(INGEST_BATCHES).column("batch_seq").to_pylist())


def test_an_ingest_killed_before_its_registry_row_is_counted_and_registered_by_the_next_writer(
    tmp_path: Path, monkeypatch, write_csv
) -> None:
    root = tmp_path / "wh"
    later = write_csv("later.csv", [["e9", "2025-01-03", "A1", "EC2", "2.5", "2025-01-05"]])
    assert cli(root, "ingest", str(SEED)).returncode == 0
    monkeypatch.setenv("COSTLAKE_CRASH_AT", "after_commit:raw_billing_events")
    assert cli(root, "ingest", str(later)).returncode == EXIT_CODE
    monkeypatch.delenv("COSTLAKE_CRASH_AT")
    wh = Warehouse(Settings(warehouse=str(root)))
    # The raw commit is the batch: readers count it, and the file is known, before any row says so.
    assert _registry_rows(wh) == [1]
    assert [b.batch_seq for b in unregistered(wh)] == [2]
    assert [b.batch_seq for b in registered_batches(wh)] == [1, 2]
    assert "already ingested as batch b000002-" in cli(root, "ingest", str(later)).stdout
    # The next writer writes the missing row, and the run publishes the batch.
    assert cli(root, "run").returncode == 0
    assert _registry_rows(wh) == [1, 2] and not unregistered(wh)
    assert {"A1", "2025-01-03"} <= {v for r in query_rows(wh, DAILY) for v in (r["account_id"], r["day"])}
    assert query_rows(wh, "SELECT count(*) AS n FROM ingest_batches") == [{"n": 2}]


def test_tables_fed_daily_keep_a_few_manifests_not_one_per_commit(tmp_path: Path, write_csv) -> None:
    """Every table merges its manifests (Iceberg's merge-append) once it has 8: twelve deliveries
    leave the raw table and the registry fewer manifests than commits, and every row readable."""
    from costlake.pipeline.ingest import ingest_files
    from costlake.tables import RAW, TABLE_PROPERTIES

    wh = Warehouse(Settings(warehouse=str(tmp_path / "wh")))
    days = [f"2025-01-{d:02d}" for d in range(1, 13)]
    paths = [
        write_csv(f"d{i}.csv", [[f"e{i}", day, "A1", "EC2", "1.5", "2025-02-01"]])
        for i, day in enumerate(days)
    ]
    for path in paths:
        ingest_files(wh, [path])
    for tdef in (RAW, INGEST_BATCHES):
        table = wh.table(tdef)
        assert TABLE_PROPERTIES.items() <= table.properties.items()
        snapshot = table.current_snapshot()
        assert snapshot is not None and len(snapshot.manifests(table.io)) < 8, tdef.name
    assert len(wh.read_rows(RAW)) == 12 and _registry_rows(wh) == list(range(1, 13))


def test_a_registry_row_removed_by_someone_else_is_refused_and_no_raw_file_is_deleted(
    tmp_path: Path, write_csv
) -> None:
    """A gap in batch_seq is a row someone removed: every command refuses it in one line before any
    change, and the clean-up of a stopped ingestion never deletes a folder the raw table names."""
    from pyiceberg.expressions import EqualTo

    from costlake.pipeline.ingest import _remove_unregistered_raw_files
    from costlake.tables import RAW

    root = tmp_path / "wh"
    files = [
        write_csv(f"d{i}.csv", [[f"e{i}", f"2025-01-0{i}", "A1", "EC2", "1.5", "2025-02-01"]])
        for i in (1, 2, 3)
    ]
    for path in files:
        assert cli(root, "ingest", str(path)).returncode == 0
    wh = Warehouse(Settings(warehouse=str(root)))
    raw_folders = sorted(p.name for p in wh.staging_root(RAW).glob("batch_id=*"))
    batches = registered_batches(wh)
    wh.table(INGEST_BATCHES).delete(EqualTo("batch_seq", 2))
    more = write_csv("d4.csv", [["e4", "2025-01-04", "A1", "EC2", "1.5", "2025-02-01"]])
    for args in (("ingest", str(more)), ("run",), ("audit", "verify"), ("maintain", "--retain-days", "0")):
        refused = cli(root, *args)
        line = refused.stderr.strip()
        assert refused.returncode != 0 and "\n" not in line, (args, refused.stderr)
        assert "ingest_batches has no row for batch_seq 2 of 1..3" in line and "nothing was changed" in line
    assert sorted(p.name for p in wh.staging_root(RAW).glob("batch_id=*")) == raw_folders
    _remove_unregistered_raw_files(Warehouse(wh.settings), [b for b in batches if b.batch_seq != 2])
    assert sorted(p.name for p in wh.staging_root(RAW).glob("batch_id=*")) == raw_folders
