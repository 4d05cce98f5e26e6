"""Reading a local warehouse without PyIceberg (lake/metadata.py) sees exactly what PyIceberg sees."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from costlake.lake.metadata import PLANS_DIR, LightTables, LocalMetadata
from costlake.lake.warehouse import UNCACHED_PLANS, Warehouse
from costlake.rag.indexer import build_index
from costlake.tables import DAILY_ACCOUNT, DIM_ACCOUNT, NAMESPACE, PUBLISH_LOG, TABLES
from helpers import SEED, ingest_and_run, query_rows


def _heavy(wh: Warehouse) -> Warehouse:
    """The same warehouse read through PyIceberg only: every table loaded from the catalog, and no
    plan cache to answer from."""
    heavy = Warehouse(wh.settings)
    heavy.light.source = None
    heavy.plans.root = Path(wh.settings.warehouse).parent / f"plans-{id(heavy)}"  # empty
    for tdef in TABLES.values():
        heavy.table(tdef)
    return heavy


def test_snapshots_files_and_rows_match_pyicebergs(wh: Warehouse) -> None:
    ingest_and_run(wh, SEED)
    light, heavy = Warehouse(wh.settings), _heavy(wh)
    for tdef in TABLES.values():
        assert light.snapshots(tdef) == heavy.snapshots(tdef), tdef.name
        for snap in [s.snapshot_id for s in heavy.snapshots(tdef)] + [None]:
            assert light.data_files(tdef, snapshot_id=snap) == heavy.data_files(tdef, snapshot_id=snap)
        assert sorted(map(str, light.read_rows(tdef).to_pylist())) == sorted(
            map(str, heavy.read_rows(tdef).to_pylist())
        ), tdef.name
    # Answered without loading a table from the catalog, but to plan the large tables a commit does
    # not plan at once (then their plans are cached too).
    assert set(light._tables) <= UNCACHED_PLANS
    assert light.read_rows(DIM_ACCOUNT).schema == DIM_ACCOUNT.arrow_schema()


def _entry(plans: Path, table: str) -> Path:
    [entry] = [p for p in (plans / table).iterdir() if p.name.endswith(f"-{_current(plans, table)}.json")]
    return entry


def _current(plans: Path, table: str) -> int:
    light = LightTables(LocalMetadata(plans.parent, NAMESPACE))
    found = light.meta(table)
    assert found is not None and found.current_snapshot_id is not None
    return found.current_snapshot_id


TAMPERS: dict[str, Callable[[Path, dict[str, Any]], None]] = {
    "not json": lambda p, doc: p.write_text("{not json"),
    "nested too deep": lambda p, doc: p.write_text("[" * 100_000 + "]" * 100_000),
    "files twice": lambda p, doc: p.write_text(json.dumps({**doc, "files": doc["files"] * 2})),
    "no files": lambda p, doc: p.write_text(json.dumps({**doc, "files": []})),
    "another snapshot's id": lambda p, doc: p.write_text(json.dumps({**doc, "snapshot_id": 1})),
    "a file outside the table": lambda p, doc: p.write_text(
        json.dumps({**doc, "files": ["/etc/passwd", *doc["files"][1:]]})
    ),
    "another table's files": lambda p, doc: p.write_text(
        json.dumps(
            {
                **doc,
                "files": [f.replace("daily_account_cost", "account_service_day_cost") for f in doc["files"]],
            }
        )  # fmt: skip
    ),
    "a device": lambda p, doc: (p.unlink(), p.symlink_to("/dev/zero")),
    "a fifo": lambda p, doc: (p.unlink(), os.mkfifo(p)),
}


@pytest.mark.parametrize("tamper", sorted(TAMPERS))
def test_a_plan_entry_that_is_not_the_snapshots_is_only_a_miss(wh: Warehouse, tamper: str) -> None:
    ingest_and_run(wh, SEED)
    plans = Path(wh.settings.warehouse) / PLANS_DIR
    assert {p.name for p in plans.iterdir()} >= {DAILY_ACCOUNT.name, PUBLISH_LOG.name, DIM_ACCOUNT.name}
    assert not (plans / "raw_billing_events").exists()  # the pipeline's own large tables are not kept
    entry = _entry(plans, DAILY_ACCOUNT.name)
    assert stat.S_IMODE(entry.stat().st_mode) == 0o644  # readable by whoever reads the warehouse
    planned = json.loads(entry.read_text())
    sql = "SELECT count(*) AS n, sum(total_cost_usd) AS t FROM daily_account_cost"
    expected = query_rows(_heavy(wh), sql)
    TAMPERS[tamper](entry, planned)
    assert query_rows(Warehouse(wh.settings), sql) == expected
    assert json.loads(entry.read_text()) == planned  # planned again, and kept again


def test_another_catalog_is_read_through_pyiceberg(make_wh) -> None:  # type: ignore[no-untyped-def]
    first = make_wh("wh")
    ingest_and_run(first, SEED)
    uri = f"sqlite:///{Path(first.settings.warehouse) / 'catalog.db'}"
    other = Warehouse(first.settings.model_copy(update={"catalog_uri": uri}))
    assert other.light.meta(DAILY_ACCOUNT.name) is None
    total = query_rows(other, "SELECT sum(total_cost_usd) AS t FROM daily_account_cost")
    assert str(total[0]["t"]) == "32.000000000000"


def _imports_after(warehouse: str, *args: str) -> tuple[str, str]:
    """Run one command in a new process; its output, and its last line: exit code and which of
    PyIceberg's catalog, table and manifest readers (and SQLAlchemy) it imported."""
    code = (
        "import sys\n"
        "from costlake.cli import main\n"
        f"sys.argv = ['costlake', '--warehouse', {warehouse!r}, *{list(args)!r}]\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    code = exc.code\n"
        "heavy = [m for m in ('pyiceberg.catalog', 'pyiceberg.table', 'pyiceberg.manifest', 'sqlalchemy')\n"
        "         if m in sys.modules]\n"
        "print('EXIT', code, 'HEAVY', heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    return done.stdout + done.stderr, done.stdout.strip().splitlines()[-1]


def test_reading_commands_do_not_import_the_catalog(make_wh) -> None:  # type: ignore[no-untyped-def]
    wh = make_wh("w hé1", embedder="hashing")  # a path a file: URI would percent-encode
    ingest_and_run(wh, SEED)
    build_index(wh)
    where = wh.settings.warehouse
    out, last = _imports_after(where, "explain", "how much did we spend in January 2025?")
    assert last == "EXIT 0 HEAVY []" and "$" in out, out
    sql = "SELECT count(*) AS n FROM raw_billing_events"
    out, last = _imports_after(where, "query", sql, "--format", "csv")  # the raw table: planned once
    assert last.startswith("EXIT 0 HEAVY ['pyiceberg.catalog'") and "\n5\n" in out, out
    out, last = _imports_after(where, "query", sql, "--format", "csv")
    assert last == "EXIT 0 HEAVY []" and "\n5\n" in out, out
