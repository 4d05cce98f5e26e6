"""Reading a local warehouse without PyIceberg (lake/metadata.py) sees exactly what PyIceberg sees."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from costlake.lake.metadata import PLANS_DIR
from costlake.lake.warehouse import UNCACHED_PLANS, Warehouse
from costlake.rag.indexer import build_index
from costlake.tables import DAILY_ACCOUNT, DIM_ACCOUNT, PUBLISH_LOG, TABLES
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


def test_a_commit_caches_its_plan_and_a_bad_cache_entry_is_only_a_miss(wh: Warehouse) -> None:
    ingest_and_run(wh, SEED)
    plans = Path(wh.settings.warehouse) / PLANS_DIR
    assert {p.name for p in plans.iterdir()} >= {DAILY_ACCOUNT.name, PUBLISH_LOG.name, DIM_ACCOUNT.name}
    assert not (plans / "raw_billing_events").exists()  # the pipeline's own large tables are not kept
    for entry in (plans / DAILY_ACCOUNT.name).iterdir():
        entry.write_text("{not json")
    (plans / DIM_ACCOUNT.name).rename(plans / "moved")
    expected = query_rows(_heavy(wh), "SELECT sum(total_cost_usd) AS t FROM daily_account_cost")
    fresh = Warehouse(wh.settings)
    assert query_rows(fresh, "SELECT sum(total_cost_usd) AS t FROM daily_account_cost") == expected
    entries = [json.loads(p.read_text()) for p in (plans / DAILY_ACCOUNT.name).iterdir()]
    assert any(e["files"] == fresh.data_files(DAILY_ACCOUNT, fetch=False) for e in entries)  # re-planned


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
    wh = make_wh(embedder="hashing")
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
