"""`fingerprint_files`: each day's row count, batches and content hash, the hash being the MD5 of the
day's sorted row MD5s (lake/fingerprint.py). The hashes stored in every lake published so far were
made by one SQL query; the streamed hash must give them back exactly, whatever the files' order and
however the sorted hashes are cut into batches."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from costlake.duck import table_scan
from costlake.lake import fingerprint
from costlake.lake.fingerprint import content_columns, fingerprint_files
from costlake.settings import Settings
from costlake.tables import DAILY_ACCOUNT, NORMALIZED, TableDef

SETTINGS = Settings(warehouse="unused")  # the DuckDB connection's threads and memory
DAYS = [dt.date(2024, 2, 10), dt.date(2024, 2, 11), dt.date(2024, 2, 12)]


def event(i: int, day: dt.date, rng: random.Random) -> dict[str, object]:
    cost = Decimal(rng.randint(-(10**15), 10**15)) / Decimal(10**12)
    cost *= 10**5 if i % 50 == 0 else 1  # beyond a million: the wide decimal rendered as such
    return {
        "event_id": f"e{i}",
        "billing_account_id": None if i % 5 == 0 else "ba-1",
        "account_id": f"acct-{i % 4}",
        "service_name": "Amazon EC2" if i % 3 else "S3 | storage\\N",  # the separator and marker inside
        "region": None if i % 7 == 0 else "eu-central-1",
        "pricing_model": "on_demand",
        "charge_category": "usage",
        "usage_date": day,
        "billed_cost": cost,
        "effective_cost": -cost if i % 2 else Decimal(0),
        "currency": "USD",
        "invoice_id": None,
        "billing_period_start": day.replace(day=1),
        "source_format": "csv",
        "ingestion_ts": dt.datetime(2024, 3, 1, 12, 0, i % 60, 123456),
        "batch_id": f"b{(i // 3) % 3}",
        "batch_seq": i % 3,
        "source_row": i,
        "usage_type": None if i % 2 else "BoxUsage:m5.large",
    }


def write(path: Path, rows: list[dict[str, object]], schema: pa.Schema) -> str:
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return str(path)


def reference(tdef: TableDef, files: list[str]) -> dict[dt.date, tuple[int, str, str]]:
    """The fingerprints as the lakes published so far computed them: one query, the row text a
    chain of `||`, the day's hash an ordered `string_agg`."""
    columns = content_columns(tdef)
    first = [c for c in columns if c not in tdef.appended]
    text = " || '|' || ".join(f"COALESCE(CAST({c} AS VARCHAR), '\\N')" for c in first)
    for c in columns[len(first) :]:
        text += f" || COALESCE('|' || CAST({c} AS VARCHAR), '')"
    batch = "batch_id" if "batch_id" in tdef.column_names else "''"
    sql = f"""SELECT usage_date, count(*), md5(string_agg(row_hash, '' ORDER BY row_hash)),
                     string_agg(DISTINCT batch_id, ',' ORDER BY batch_id)
              FROM (SELECT usage_date, md5({text}) AS row_hash, {batch} AS batch_id
                    FROM ({table_scan(files, tdef.arrow_schema())}) AS stored)
              GROUP BY usage_date"""
    return {d: (n, h, b) for d, n, h, b in duckdb.connect().execute(sql).fetchall()}


@pytest.fixture
def files(tmp_path: Path) -> list[str]:
    """Three days in four files: the second day split over two, one of them written before the
    appended `usage_type` existed (the column missing from the file)."""
    rng = random.Random(7)
    rows = [event(i, DAYS[i % 3], rng) for i in range(600)]
    rows += [dict(rows[1])]  # an identical row twice: equal hashes, order among them irrelevant
    schema = NORMALIZED.arrow_schema()
    older = pa.schema([f for f in schema if f.name != "usage_type"])
    day2 = [r for r in rows if r["usage_date"] == DAYS[1]]
    return [
        write(tmp_path / "a.parquet", [r for r in rows if r["usage_date"] == DAYS[0]], schema),
        write(tmp_path / "b.parquet", day2[:100], schema),
        write(
            tmp_path / "c.parquet",
            [{k: v for k, v in r.items() if k != "usage_type"} for r in day2[100:]],
            older,
        ),
        write(tmp_path / "d.parquet", [r for r in rows if r["usage_date"] == DAYS[2]], schema),
    ]


@pytest.mark.parametrize("batch_rows", [1 << 20, 7])
def test_the_streamed_hashes_are_the_ones_the_lakes_hold(
    files: list[str], batch_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fingerprint, "BATCH_ROWS", batch_rows)  # 7: every day's hashes cut into many batches
    got = fingerprint_files(NORMALIZED, files, SETTINGS)
    want = reference(NORMALIZED, files)
    assert sorted(got) == DAYS
    assert {d: (f.row_count, f.content_hash, f.batch_ids) for d, f in got.items()} == want
    assert got[DAYS[1]].row_count == 201 and got[DAYS[1]].batch_ids == "b0,b1,b2"


def test_a_table_without_batches_and_with_run_columns(tmp_path: Path) -> None:
    """Stage 3: no batch ids, and `published_at` / `run_id` left out of the hash."""
    rng = random.Random(3)

    def row(i: int, run: str) -> dict[str, object]:
        cost = Decimal(rng.randint(-(10**17), 10**17)) / Decimal(10**12)  # up to 100,000 either way
        return {
            "account_id": f"acct-{i}", "usage_date": DAYS[i % 2], "total_cost_usd": cost,
            "effective_cost_usd": None if i % 4 == 0 else cost, "event_count": i, "service_count": i % 3,
            "data_complete": i % 5 != 0, "published_at": dt.datetime(2024, 3, i % 28 + 1), "run_id": run,
        }  # fmt: skip

    schema = DAILY_ACCOUNT.arrow_schema()
    one = write(tmp_path / "one.parquet", [row(i, "run-1") for i in range(40)], schema)
    rng.seed(3)
    other = write(tmp_path / "other.parquet", [row(i, "run-2") for i in range(40)], schema)
    got = fingerprint_files(DAILY_ACCOUNT, [one], SETTINGS)
    assert {d: (f.row_count, f.content_hash, f.batch_ids) for d, f in got.items()} == reference(
        DAILY_ACCOUNT, [one]
    )
    assert (
        fingerprint_files(DAILY_ACCOUNT, [other], SETTINGS) == got
    )  # published again by another run: the same


def test_file_order_changes_nothing_and_content_changes_the_day_it_touches(
    files: list[str], tmp_path: Path
) -> None:
    before = fingerprint_files(NORMALIZED, files, SETTINGS)
    assert fingerprint_files(NORMALIZED, files[::-1], SETTINGS) == before
    table = pq.read_table(files[0])
    cost = table.column("billed_cost").to_pylist()
    cost[3] += Decimal("0.000000000001")  # one row of the first day, by the smallest amount the lake holds
    column = table.schema.get_field_index("billed_cost")
    table = table.set_column(column, "billed_cost", pa.array(cost, table.schema.field(column).type))
    changed = write(tmp_path / "a2.parquet", table.to_pylist(), table.schema)
    after = fingerprint_files(NORMALIZED, [changed, *files[1:]], SETTINGS)
    assert after[DAYS[0]].content_hash != before[DAYS[0]].content_hash
    assert after[DAYS[0]].row_count == before[DAYS[0]].row_count
    assert {d: after[d] for d in DAYS[1:]} == {d: before[d] for d in DAYS[1:]}


def test_no_files_no_fingerprints() -> None:
    assert fingerprint_files(NORMALIZED, [], SETTINGS) == {}


def test_rows_without_a_day_have_a_fingerprint_of_their_own(files: list[str], tmp_path: Path) -> None:
    """Not a day the stages publish (the gate holds back a row without one), but hashed as before."""
    rows = pq.read_table(files[0]).to_pylist()[:5]
    undated = write(
        tmp_path / "undated.parquet", [r | {"usage_date": None} for r in rows], NORMALIZED.arrow_schema()
    )
    got = fingerprint_files(NORMALIZED, [undated, files[0]], SETTINGS)
    want = reference(NORMALIZED, [undated, files[0]])
    assert {d: (f.row_count, f.content_hash, f.batch_ids) for d, f in got.items()} == want
    assert got[None].row_count == 5  # type: ignore[index]
