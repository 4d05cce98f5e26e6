"""`load_text` numbers a CSV's rows by their place in the file. The rows are stored in file order and
each row's place is its rowid: a file large enough for DuckDB to read in parallel pieces keeps its
numbering, a column of the file named `rowid` does not hide it, and a connection that does not keep
insertion order is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from costlake.duck import connect
from costlake.lake.warehouse import Warehouse
from costlake.pipeline.ingest import ingest_files
from costlake.settings import Settings
from costlake.sources.sql_text import load_text
from costlake.tables import QUARANTINE, RAW

ROWS = 700_000  # about 45 MB: read by DuckDB in several pieces on two threads


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("csv") / "big.csv"
    with path.open("w") as out:
        out.write("event_id,account_id,service_name,region,pricing_model,usage_date,cost_usd,ingestion_ts\n")
        for i in range(1, ROWS + 1):
            day = f"2024-01-0{1 + i % 9}"
            out.write(f"e{i},{100000 + i % 977},svc-{i % 31},eu-west-{i % 3},on_demand,{day},{i}.5,\n")
    return path


def test_each_row_is_numbered_by_its_place_in_the_file(big_csv: Path, tmp_path: Path) -> None:
    con = connect(Settings(warehouse=str(tmp_path / "wh"), duckdb_threads=2), tmp_path, ordered=True)
    header = big_csv.open().readline().strip().split(",")
    load_text(con, big_csv, header)
    wrong, count, last = con.execute(
        "SELECT count(*) FILTER (WHERE event_id <> 'e' || source_row), count(*), max(source_row) "
        "FROM text_rows"
    ).fetchall()[0]
    assert (wrong, count, last) == (0, ROWS, ROWS)


@pytest.mark.parametrize("name", ["rowid", "RowID"])
def test_a_column_named_rowid_is_the_files_own(tmp_path: Path, name: str) -> None:
    path = tmp_path / "rowid.csv"
    path.write_text(f"event_id,{name},cost_usd\ne1,x,1\ne2,y,2\n")
    con = connect(Settings(warehouse=str(tmp_path / "wh")), tmp_path, ordered=True)
    load_text(con, path, ["event_id", name, "cost_usd"])
    rows = con.execute(f'SELECT source_row, event_id, "{name}" FROM text_rows ORDER BY source_row').fetchall()
    assert rows == [(1, "e1", "x"), (2, "e2", "y")]


def test_a_connection_that_does_not_keep_order_is_refused(big_csv: Path, tmp_path: Path) -> None:
    con = connect(Settings(warehouse=str(tmp_path / "wh")), tmp_path, ordered=False)
    with pytest.raises(ValueError, match="keeps insertion order"):
        load_text(con, big_csv, ["event_id"])


def test_an_ingest_keeps_each_rows_number_and_quarantine_in_file_order(big_csv: Path, tmp_path: Path) -> None:
    """The raw batch is written without keeping insertion order (on both threads), quarantine in file
    order: every raw row keeps its number, and the refused rows read back in the order of the file."""
    bad = tmp_path / "some_bad.csv"
    with big_csv.open() as src, bad.open("w") as out:
        out.write(src.readline())
        for number, line in enumerate(src, start=1):
            out.write(line.replace(f",{number}.5,", ",not money,") if number % 5_000 == 0 else line)
    wh = Warehouse(Settings(warehouse=str(tmp_path / "wh"), duckdb_threads=2))
    ingest_files(wh, [bad])
    raw = wh.read_rows(RAW).select(["event_id", "source_row"]).to_pylist()
    assert len(raw) == ROWS - ROWS // 5_000
    assert all(r["event_id"] == f"e{r['source_row']}" for r in raw)
    refused = wh.read_rows(QUARANTINE).column("source_row").to_pylist()
    assert refused == list(range(5_000, ROWS + 1, 5_000))
