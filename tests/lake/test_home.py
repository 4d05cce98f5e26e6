"""A mistyped warehouse path is refused, not turned into a new, empty lake: only the commands that
bring data in create a warehouse."""

from __future__ import annotations

from pathlib import Path

import pytest

from costlake.synthetic.generate import generate
from helpers import cli


@pytest.mark.parametrize(
    "command",
    [
        ("query", "SELECT count(*) FROM daily_account_cost"),
        ("run",),
        ("anomalies",),
        ("validate",),
        ("catalog", "ddl"),
    ],
)
def test_a_command_that_does_not_bring_data_in_refuses_a_folder_without_a_warehouse(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    missing, empty, touched = tmp_path / "warehuose", tmp_path / "empty", tmp_path / "touched"
    empty.mkdir()
    touched.mkdir()
    (touched / "catalog.db").touch()  # an empty file is no catalog
    for where in (missing, empty, touched):
        done = cli(where, *command)
        assert done.returncode == 1, done.stdout + done.stderr
        assert done.stderr.strip() == (
            f"error: {where.resolve()}: no costlake warehouse here; check the warehouse setting "
            "(--warehouse, COSTLAKE_WAREHOUSE or costlake.toml): `costlake ingest` creates one"
        )
    assert not missing.exists() and list(empty.iterdir()) == []
    assert [p.name for p in touched.iterdir()] == ["catalog.db"]


def test_ingest_creates_the_warehouse_and_then_every_command_finds_it(tmp_path: Path) -> None:
    made = generate(tmp_path / "bills", events=300, days=2, batches=1)
    assert cli(tmp_path / "wh", "ingest", str(made.files[0])).returncode == 0
    assert (tmp_path / "wh" / "catalog.db").is_file()
    done = cli(tmp_path / "wh", "query", "SELECT count(*) AS n FROM raw_billing_events", "--format", "csv")
    assert done.returncode == 0 and done.stdout.splitlines()[1] != "0", done.stderr


NATIVE = "event_id,usage_date,account_id,service_name,cost_usd\n"


def test_a_warehouse_path_a_uri_would_misread_is_refused_and_nothing_is_created(tmp_path: Path) -> None:
    """`lake%20A` opened `lake A`'s catalog (and added its batch to that lake's money); `lake?a` made a
    catalog file `lake` that no later command found."""
    bill = tmp_path / "a.csv"
    bill.write_text(NATIVE + "e1,2025-03-01,111,ec2,10.50\n")
    lake = tmp_path / "lake A"
    assert cli(lake, "ingest", str(bill)).returncode == 0
    # DuckDB wrote `back\slash`'s run files into the folder `back/slash`: its every run failed.
    for name, sign in [("lake%20A", "%"), ("lake?a", "?"), ("la#ke", "#"), ("back\\slash", "\\")]:
        done = cli(tmp_path / name, "ingest", str(bill))
        assert done.returncode == 1 and done.stderr.strip() == (
            f"error: {tmp_path / name}: a warehouse folder's path cannot hold {sign} (the Iceberg catalog's "
            "URIs read them as escapes, a query or a fragment, DuckDB a backslash as a slash); "
            "choose a folder without them"
        )
        assert not (tmp_path / name).exists()
    for name in ("lake\tA", "lake\nA", "lake\rA"):  # a URI parser drops them: the tables went to lakeA
        done = cli(tmp_path / name, "ingest", str(bill))
        assert done.returncode == 1 and "path cannot hold a control character" in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / name).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "lake A"]
    batches = cli(lake, "query", "SELECT count(*) AS n FROM ingest_batches", "--format", "csv")
    assert batches.stdout.splitlines() == ["n", "1"]


def test_a_warehouse_folder_with_a_space_or_an_accent_holds_its_own_tables(tmp_path: Path) -> None:
    """PyIceberg takes a file URI's path literally: the tables of `lake A` were written to a folder
    `lake%20A` beside it, which a backup (or removal) of the warehouse folder missed."""
    bill = tmp_path / "a.csv"
    bill.write_text(NATIVE + "e1,2025-03-01,111,ec2,10.50\n")
    for name in ("lake A", "lac été"):
        lake = tmp_path / name
        assert cli(lake, "ingest", str(bill)).returncode == 0 and cli(lake, "run").returncode == 0
        parquet = list(lake.rglob("*.parquet"))
        assert parquet and all(lake in p.parents for p in parquet)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "lac été", "lake A"]
