"""The engine contract on every engine: the stages' SQL, the gate's findings and the written files,
without a lake. Expected values are literals, so DuckDB and Spark must both produce them."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from costlake.engines import Engine, create_engine
from costlake.engines.duckdb_engine import FLUSH_ROWS
from costlake.lake.partition_files import check_partition_files
from costlake.pipeline import gate, stage1_normalize, stage2_account_service_day, stage3_account_day
from costlake.pipeline.rebuild import DEFINED
from costlake.settings import Settings
from costlake.tables import ACCOUNT_SERVICE_DAY, DAILY_ACCOUNT, NORMALIZED, RAW
from helpers import engine_options

pytestmark = pytest.mark.all_engines
D = Decimal
DAY1, DAY2 = dt.date(2025, 1, 1), dt.date(2025, 1, 2)


@pytest.fixture
def compute(engine: str, tmp_path: Path) -> Iterator[Engine]:
    settings = Settings(warehouse=str(tmp_path / "wh"), **engine_options(engine))
    with create_engine(settings, tmp_path / "tmp") as session:
        yield session


def raw(*rows: dict[str, object]) -> pa.Table:
    base = {
        "charge_category": "usage",
        "currency": "USD",
        "batch_seq": 1,
        "ingestion_ts": dt.datetime(2025, 1, 3),
    }
    filled = [base | {"effective_cost": r.get("billed_cost")} | r for r in rows]
    return pa.Table.from_pylist(filled, schema=RAW.arrow_schema())


def columns(schema: pa.Schema) -> list[tuple[str, pa.DataType]]:
    """Names and types; string and large_string are the same column to the lake."""
    return [(f.name, pa.string() if f.type == pa.large_string() else f.type) for f in schema]


def stage1(compute: Engine, table: pa.Table, days: list[dt.date], every_day: bool | None = None) -> pa.Table:
    compute.register_arrow("raw", table)
    compute.register_arrow("days", pa.table({"usage_date": pa.array(days, pa.date32())}))
    if every_day is None:  # as the rebuild does
        every_day = not compute.fetch(stage1_normalize.outside_days_sql("raw", "days")).num_rows
    for name, sql in stage1_normalize.steps("raw", "days", every_day=every_day):
        if name in DEFINED:
            compute.define(name, sql)
        else:
            compute.materialize(name, sql)
    return compute.fetch("SELECT * FROM s1 ORDER BY event_id")


def test_a_defined_relation_has_the_rows_a_materialised_one_would(compute):
    rows = raw(
        {"event_id": "e1", "account_id": "A1", "service_name": "S3", "usage_date": DAY1, "billed_cost": D(1)},
        {"event_id": "e2", "account_id": "A1", "service_name": "S3", "usage_date": DAY2, "billed_cost": D(2)},
    )
    defined = stage1(compute, rows, [DAY1, DAY2])
    compute.materialize("held", "SELECT * FROM s1")
    assert compute.fetch("SELECT * FROM held ORDER BY event_id").equals(defined)
    assert compute.fetch("SELECT sum(billed_cost) AS total FROM s1").column("total").to_pylist() == [D(3)]


def test_ranking_every_event_when_the_days_hold_every_raw_row_gives_the_same_stage_1(compute):
    """`every_day`: when the rebuilt days hold the day of every raw row (a full load), every event is
    ranked without the events of those days being listed first; stage 1, the winners and the raw ids
    the gate reads are the same either way (with a period row, and a row with no event id, which only
    raw damaged outside costlake holds), and a row on another day, or with no day, makes the rebuild
    list them."""
    later = dt.datetime(2025, 1, 4)
    rows = raw(
        {"event_id": "e1", "account_id": "A1", "service_name": "S3", "usage_date": DAY1, "billed_cost": D(1)},
        {"event_id": "e1", "account_id": "A1", "service_name": "S3", "usage_date": DAY2, "billed_cost": D(5)}
        | {"ingestion_ts": later, "batch_seq": 2, "source_row": 1},  # e1 corrected and moved to DAY2
        {"event_id": "e2", "account_id": "A1", "service_name": "S3", "usage_date": DAY1, "billed_cost": D(2)}
        | {"source_row": 2},
        {"event_id": "p1", "account_id": "A1", "service_name": "EC2", "usage_date": DAY2, "billed_cost": D(7)}
        | {
            "source_format": "focus",
            "billing_account_id": "BA1",
            "billing_period_start": DAY1,
            "source_row": 3,
        },
        {"event_id": None, "account_id": "A1", "service_name": "S3", "usage_date": DAY1, "billed_cost": D(9)}
        | {"source_row": 4},
    )

    def made(every_day: bool) -> list[list[dict[str, object]]]:
        s1 = stage1(compute, rows, [DAY1, DAY2], every_day=every_day)
        winners = compute.fetch("SELECT event_id, usage_date, op FROM winners ORDER BY event_id")
        ids = compute.fetch("SELECT usage_date, event_id FROM raw_ids ORDER BY usage_date, event_id")
        return [t.to_pylist() for t in (s1, winners, ids)]

    listed = made(False)
    assert not compute.fetch(stage1_normalize.outside_days_sql("raw", "days")).num_rows
    assert made(True) == listed
    events = [r for r in listed[0] if str(r["event_id"]).startswith("e")]
    assert [(r["event_id"], r["usage_date"], r["billed_cost"]) for r in events] == [
        ("e1", DAY2, D(5)), ("e2", DAY1, D(2))
    ]  # fmt: skip
    assert [r["event_id"] for r in listed[1]] == ["e1", "e2"]
    stage1(compute, rows, [DAY2])
    assert compute.fetch(stage1_normalize.outside_days_sql("raw", "days")).num_rows == 1
    undated = raw({"event_id": "e3", "account_id": "A1", "service_name": "S3", "usage_date": None})
    stage1(compute, undated, [DAY1, DAY2])
    assert compute.fetch(stage1_normalize.outside_days_sql("raw", "days")).num_rows == 1


def test_duckdb_writes_a_partition_out_as_its_rows_come_not_all_at_the_end(tmp_path):
    """Each thread writes a partition's rows every FLUSH_ROWS rows (DuckDB's default held them all
    until the end: at 10M events about 3 GiB more than the rows); one file per day still, all rows."""
    with create_engine(Settings(warehouse=str(tmp_path / "wh")), tmp_path / "tmp") as session:
        con = session.con  # type: ignore[attr-defined]
        setting = con.execute("SELECT current_setting('partitioned_write_flush_threshold')").fetchall()
        assert setting == [(FLUSH_ROWS,)]
        rows = 3 * FLUSH_ROWS
        day = "DATE '2025-01-01' + CAST(i % 3 AS INTEGER)"
        session.materialize("many", f"SELECT {day} AS usage_date, i FROM range({rows}) t(i)")
        files = session.write_partitions("SELECT * FROM many", tmp_path / "out", "usage_date")
    assert len(files) == 3
    written = [pq.read_table(f) for f in files]
    assert sorted(t.num_rows for t in written) == [FLUSH_ROWS] * 3
    assert sum(pa.compute.sum(t["i"]).as_py() for t in written) == rows * (rows - 1) // 2
    assert all(len(set(t["usage_date"].to_pylist())) == 1 for t in written)


def test_duckdb_defines_a_view_that_holds_no_copy_of_its_rows(tmp_path):
    with create_engine(Settings(warehouse=str(tmp_path / "wh")), tmp_path / "tmp") as session:
        session.register_arrow("raw", raw({"event_id": "e1", "account_id": "A1", "service_name": "S3",
                                           "usage_date": DAY1, "billed_cost": D(1)}))  # fmt: skip
        session.materialize("held", "SELECT * FROM raw")
        session.define("seen", "SELECT * FROM held WHERE billed_cost > 0")
        con = session.con  # type: ignore[attr-defined]
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        listed = con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
        views = {r[0] for r in listed}
        assert "held" in tables and "seen" not in tables and "seen" in views
        con.execute("DELETE FROM held")  # a view follows what it reads
        assert session.fetch("SELECT * FROM seen").num_rows == 0


def test_winners_by_total_order_and_moved_events(compute):
    rows = raw(
        {
            "event_id": "e1",
            "account_id": "A1",
            "service_name": " EC2",
            "usage_date": DAY1,
            "billed_cost": D(1),
        },
        {"event_id": "e1", "account_id": "A1", "service_name": "ec2", "usage_date": DAY1, "billed_cost": D(2)}
        | {"batch_seq": 2, "usage_type": "BoxUsage:m5.large"},
        {"event_id": "e2", "account_id": "A1", "service_name": "S3", "usage_date": DAY1, "billed_cost": D(3)}
        | {"source_row": 7},
        {"event_id": "e2", "account_id": "A2", "service_name": "S3", "usage_date": DAY2, "billed_cost": D(4)}
        | {"source_row": 8},
    )
    out = stage1(compute, rows, [DAY1])
    assert out.schema.names == NORMALIZED.column_names
    assert out.select(["event_id", "service_name", "billed_cost", "usage_type"]).to_pylist() == [
        {"event_id": "e1", "service_name": "ec2", "billed_cost": D("2.000000000000")}
        | {"usage_type": "BoxUsage:m5.large"}
    ]  # e2 moved to DAY2: its winner leaves DAY1
    both = stage1(compute, rows, [DAY1, DAY2])
    assert [(r["event_id"], r["usage_date"]) for r in both.to_pylist()] == [("e1", DAY1), ("e2", DAY2)]


def test_a_loser_is_told_apart_by_its_batch_and_row_not_by_either_alone(compute):
    """Losers are removed by their place in raw (batch_seq, source_row): e1's older row shares its
    row number with e3's row of the next batch and its batch with e2's row, which both win."""
    row = {"account_id": "A1", "service_name": "S3", "usage_date": DAY1}
    rows = raw(
        row | {"event_id": "e1", "billed_cost": D(1), "batch_seq": 1, "source_row": 5},
        row | {"event_id": "e1", "billed_cost": D(2), "batch_seq": 2, "source_row": 1},
        row | {"event_id": "e2", "billed_cost": D(3), "batch_seq": 1, "source_row": 6},
        row | {"event_id": "e3", "billed_cost": D(4), "batch_seq": 2, "source_row": 5},
        row | {"event_id": "e4", "billed_cost": D(5), "batch_seq": 1, "source_row": 7, "usage_date": DAY2},
        row | {"event_id": "e4", "billed_cost": D(6), "batch_seq": 2, "source_row": 2, "op": "delete"},
    )
    out = stage1(compute, rows, [DAY1, DAY2])
    assert [(r["event_id"], r["billed_cost"]) for r in out.to_pylist()] == [
        ("e1", D("2.000000000000")),
        ("e2", D("3.000000000000")),
        ("e3", D("4.000000000000")),
    ]  # e4's delete row wins: retracted
    winners = compute.fetch("SELECT event_id, usage_date, op FROM winners ORDER BY event_id").to_pylist()
    assert [(r["event_id"], r["op"]) for r in winners] == [("e1", None), ("e2", None), ("e3", None)] + [
        ("e4", "delete")
    ]


def accounted(compute: Engine) -> list[str]:
    """The gate's events_accounted findings over `stage1`'s relations (stages 2 and 3 made from s1)."""
    compute.materialize("s2", stage2_account_service_day.account_service_day_sql("s1"))
    compute.register_arrow(
        "accounts", pa.table({"account_id": ["A1"], "last_ingestion_ts": [dt.datetime(2025, 1, 9)]})
    )
    compute.materialize("invoiced", stage3_account_day.invoiced_sql("s1"))
    sql = stage3_account_day.account_day_sql(
        "s2", "accounts", "invoiced", lag_hours=24, run_id="r", published_at=dt.datetime(2025, 1, 9)
    )
    compute.materialize("s3", sql)
    compute.materialize("raw_days", gate.RAW_DAYS_SQL)
    found = compute.fetch(gate.gate_sql(currency="USD", negative_total="warning", dialect=compute.dialect))
    return [r["detail"] for r in found.to_pylist() if r["check_name"] == "events_accounted"]


def test_a_day_whose_events_win_but_whose_stage_1_partition_is_empty_is_held_back(compute):
    """`not_empty`: events of DAY2 have winning versions, yet stage 1 holds nothing of that day."""
    s1 = pa.Table.from_pylist(
        [
            {"event_id": "e1", "account_id": "A1", "service_name": "ec2", "usage_date": DAY1}
            | {"billed_cost": D(3), "effective_cost": D(3), "currency": "USD"},
        ],
        schema=NORMALIZED.arrow_schema(),
    )
    compute.register_arrow("s1", s1)
    won = pa.table(
        {"event_id": ["e1", "e2", "e3"], "usage_date": [DAY1, DAY2, DAY2], "op": [None, None, "delete"]},
        schema=pa.schema([("event_id", pa.string()), ("usage_date", pa.date32()), ("op", pa.string())]),
    )
    compute.register_arrow("winners", won)
    compute.register_arrow(
        "raw_ids", pa.table({"usage_date": [DAY1, DAY2, DAY2], "event_id": ["e1", "e2", "e2"]})
    )
    accounted(compute)  # stages 2 and 3 from s1
    compute.materialize("raw_days", gate.RAW_DAYS_SQL)
    found = compute.fetch(gate.gate_sql(currency="USD", negative_total="warning", dialect=compute.dialect))
    assert [tuple(r.values()) for r in found.to_pylist()] == [
        (DAY2, "not_empty", "error", "2 winning event(s) but the stage 1 partition is empty")
    ]


def test_raw_damaged_outside_costlake_is_reported_never_dropped_silently(compute):
    """Raw's grain (batch_seq, source_row) broken by another writer: the rows at a place held twice
    are left out of stage 1, and the gate says so for their day."""
    row = {"account_id": "A1", "service_name": "S3", "usage_date": DAY1}
    twice = row | {"event_id": "e1", "billed_cost": D(1), "batch_seq": 1, "source_row": 1}
    rows = raw(twice, twice, row | {"event_id": "e2", "billed_cost": D(2), "batch_seq": 1, "source_row": 2})
    out = stage1(compute, rows, [DAY1])
    assert out.column("event_id").to_pylist() == ["e2"]
    assert accounted(compute) == ["2 winning event(s) of this day, 1 in stage 1"]
    unnumbered = raw(
        row | {"event_id": "e1", "billed_cost": D(3), "batch_seq": 1},
        row | {"event_id": "e1", "billed_cost": D(4), "batch_seq": 2},
        row | {"event_id": "e2", "billed_cost": D(5), "batch_seq": 1},
    )
    out = stage1(compute, unnumbered, [DAY1])  # e1's older row and e2's share (1, NULL)
    assert [(r["event_id"], r["billed_cost"]) for r in out.to_pylist()] == [("e1", D("4.000000000000"))]
    assert accounted(compute) == ["2 winning event(s) of this day, 1 in stage 1"]


def test_release_frees_a_materialised_or_a_defined_relation(compute):
    compute.register_arrow("numbers", pa.table({"n": [1, 2, 3]}))
    compute.materialize("held", "SELECT n FROM numbers WHERE n > 1")
    compute.define("seen", "SELECT n FROM held WHERE n > 2")
    assert compute.fetch("SELECT count(*) AS c FROM seen").column("c").to_pylist() == [1]
    compute.release("seen")
    compute.release("held")
    for name in ("held", "seen"):
        with pytest.raises(Exception, match=name):
            compute.fetch(f"SELECT * FROM {name}")
    compute.materialize("held", "SELECT n FROM numbers")  # the name can be made again
    assert compute.fetch("SELECT count(*) AS c FROM held").column("c").to_pylist() == [3]
    compute.release("numbers")  # registered Arrow: the table behind it goes too
    for name in ("numbers", "numbers__arrow"):
        with pytest.raises(Exception, match=name):
            compute.fetch(f"SELECT * FROM {name}")


def test_period_rows_roll_up_with_the_same_event_ids_everywhere(compute):
    period = {"source_format": "focus", "billing_account_id": "BA1", "billing_period_start": DAY1}
    rows = raw(
        *(
            period
            | {"event_id": f"h{h}", "account_id": "A1", "service_name": "EC2", "usage_date": DAY1}
            | {"billed_cost": D("0.000000000001") * (h + 1), "source_row": h}
            for h in range(3)
        ),
        period
        | {"event_id": "x", "account_id": "A1", "service_name": "EC2", "usage_date": DAY2}
        | {"billed_cost": D("-1.5"), "region": "eu-west-1", "invoice_id": "INV-1", "source_row": 9},
    )
    out = stage1(compute, rows, [DAY1, DAY2]).to_pylist()
    # NULLs are keyed as '(null)': no backslash, which DuckDB and Spark would read differently.
    key = "BA1|2025-01-01|A1|ec2|(null)|(null)|usage|2025-01-01|USD|(null)"
    day1 = "focus:" + hashlib.md5(key.encode()).hexdigest()
    assert [(r["event_id"], r["usage_date"], r["billed_cost"]) for r in out if r["usage_date"] == DAY1] == [
        (day1, DAY1, D("0.000000000006"))
    ]
    key2 = "BA1|2025-01-01|A1|ec2|eu-west-1|(null)|usage|2025-01-02|USD|INV-1"
    assert [r["event_id"] for r in out if r["usage_date"] == DAY2] == [
        "focus:" + hashlib.md5(key2.encode()).hexdigest()
    ]
    assert {r["usage_type"] for r in out} == {None}


def test_period_rows_roll_up_per_usage_type_and_keep_their_ids_without_one(compute):
    period = {"source_format": "cur", "billing_account_id": "P1", "billing_period_start": DAY1}
    hours = [
        period
        | {"event_id": f"h{h}", "account_id": "A1", "service_name": "AmazonEC2", "usage_date": DAY1}
        | {"billed_cost": D("0.5"), "source_row": h, "usage_type": usage_type}
        for h, usage_type in enumerate(
            ["USE1-BoxUsage:m5.large", "USE1-BoxUsage:m5.large", "USE1-EBS:VolumeUsage"]
        )
    ]
    hours.append(
        period
        | {"event_id": "t", "account_id": "A1", "service_name": "AmazonEC2", "usage_date": DAY1}
        | {"billed_cost": D("0.25"), "source_row": 9, "charge_category": "tax"}
    )
    out = stage1(compute, raw(*hours), [DAY1]).to_pylist()
    key = "P1|2025-01-01|A1|amazonec2|(null)|(null)|{}|2025-01-01|USD|(null)"
    expected = {
        (key.format("usage") + "|USE1-BoxUsage:m5.large", "USE1-BoxUsage:m5.large", D("1")),
        (key.format("usage") + "|USE1-EBS:VolumeUsage", "USE1-EBS:VolumeUsage", D("0.5")),
        # No usage type: the id a row had before usage types were read.
        (key.format("tax"), None, D("0.25")),
    }
    got = {(r["event_id"], r["usage_type"], r["billed_cost"]) for r in out}
    assert got == {("cur:" + hashlib.md5(k.encode()).hexdigest(), u, c) for k, u, c in expected}


def test_stage2_and_stage3_types_and_exact_sums(compute):
    rows = raw(
        {"event_id": "e1", "account_id": "A1", "service_name": "EC2", "usage_date": DAY1}
        | {"billed_cost": D("99999999999999999999999.999999999999")},
        {
            "event_id": "e2",
            "account_id": "A1",
            "service_name": "EC2",
            "usage_date": DAY1,
            "billed_cost": D("-0.5"),
        },
        {"event_id": "e3", "account_id": "A1", "service_name": "S3", "usage_date": DAY1}
        | {"billed_cost": D("0.000000000001"), "invoice_id": "INV"},
    )
    stage1(compute, rows, [DAY1])
    compute.materialize("s2", stage2_account_service_day.account_service_day_sql("s1"))
    compute.materialize("accounts", stage3_account_day.account_ingestion_sql("raw"))
    compute.materialize("invoiced", stage3_account_day.invoiced_sql("s1"))
    published = dt.datetime(2025, 3, 4, 5, 6, 7, 890123)
    sql = stage3_account_day.account_day_sql(
        "s2", "accounts", "invoiced", lag_hours=48, run_id="r1", published_at=published
    )
    compute.materialize("s3", sql)
    s2 = compute.fetch("SELECT * FROM s2 ORDER BY service_name")
    s3 = compute.fetch("SELECT * FROM s3")
    for got, tdef in ((s2, ACCOUNT_SERVICE_DAY), (s3, DAILY_ACCOUNT)):
        assert columns(got.schema) == columns(tdef.arrow_schema())
    assert [r["total_cost_usd"] for r in s2.to_pylist()] == [
        D("99999999999999999999999.499999999999"),
        D("0.000000000001"),
    ]
    assert s3.to_pylist() == [
        {
            "account_id": "A1",
            "usage_date": DAY1,
            "total_cost_usd": D("99999999999999999999999.500000000000"),
            "effective_cost_usd": D("99999999999999999999999.500000000000"),
            "event_count": 3,
            "service_count": 2,
            "data_complete": False,  # ingested 48 h after the day began, lag 48 h; not all invoiced
            "published_at": published,
            "run_id": "r1",
        }
    ]


def test_gate_findings_are_the_same_text_in_the_same_order(compute):
    s1 = pa.Table.from_pylist(
        [
            {"event_id": "e1", "account_id": "A1", "service_name": "ec2", "usage_date": DAY1}
            | {"billed_cost": D(-3), "effective_cost": D(-3), "currency": "USD"},
            {"event_id": "e2", "account_id": "A2", "service_name": "ec2", "usage_date": DAY1}
            | {"billed_cost": D("-0.25"), "effective_cost": D("-0.25"), "currency": "EUR"},
            {"event_id": "e3", "account_id": None, "service_name": "s3", "usage_date": DAY2}
            | {"billed_cost": D(1), "effective_cost": D(1), "currency": "USD"},
            {"event_id": "e4", "account_id": "A1", "service_name": "s3", "usage_date": None}
            | {"billed_cost": D(1), "effective_cost": D(1), "currency": "USD"},
        ],
        schema=NORMALIZED.arrow_schema(),
    )
    compute.register_arrow("s1", s1)
    compute.materialize("s2", stage2_account_service_day.account_service_day_sql("s1"))
    compute.register_arrow(
        "accounts", pa.table({"account_id": ["A1"], "last_ingestion_ts": [dt.datetime(2025, 1, 9)]})
    )
    compute.register_arrow(
        "invoiced", pa.table({"account_id": ["A1"], "usage_date": [DAY1], "invoiced": [False]})
    )
    sql = stage3_account_day.account_day_sql(
        "s2", "accounts", "invoiced", lag_hours=24, run_id="r", published_at=dt.datetime(2025, 1, 9)
    )
    # Stage 3 is computed from a stage 2 that lost A2's row: reconciliation must catch it.
    compute.materialize("s3", f"SELECT * FROM ({sql}) AS s WHERE COALESCE(account_id, '') <> 'A2'")
    compute.register_arrow("raw_ids", pa.table({"usage_date": [DAY2], "event_id": ["lost"]}))
    won = s1.filter(pa.compute.equal(s1["event_id"], "e1"))
    compute.register_arrow("winners", won.append_column("op", pa.nulls(won.num_rows, pa.string())))
    compute.materialize("raw_days", gate.RAW_DAYS_SQL)
    found = compute.fetch(gate.gate_sql(currency="USD", negative_total="warning", dialect=compute.dialect))
    assert [tuple(r.values()) for r in found.to_pylist()] == [
        (DAY1, "negative_daily_total", "warning", "A1 -3.000000000000"),
        (
            DAY1,
            "reconciliation",
            "error",
            "-3.250000000000 / -3.250000000000 / -3.000000000000 billed, -3.250000000000 / "
            "-3.250000000000 / -3.000000000000 effective, 2 / 2 / 1 events (stage 1 / 2 / 3)",
        ),
        (DAY1, "single_currency", "error", "currencies EUR, USD, expected USD"),
        (DAY2, "events_accounted", "error", "1 raw event(s) of this day have no published version"),
        (
            DAY2,
            "keys_not_null",
            "error",
            "s1: 1 row(s) with a null key (event_id, account_id, service_name, usage_date)",
        ),
        (
            DAY2,
            "keys_not_null",
            "error",
            "s2: 1 row(s) with a null key (account_id, service_name, usage_date)",
        ),
        (DAY2, "keys_not_null", "error", "s3: 1 row(s) with a null key (account_id, usage_date)"),
        (
            None,
            "keys_not_null",
            "error",
            "s1: 1 row(s) with a null key (event_id, account_id, service_name, usage_date)",
        ),
        (
            None,
            "keys_not_null",
            "error",
            "s2: 1 row(s) with a null key (account_id, service_name, usage_date)",
        ),
        (None, "keys_not_null", "error", "s3: 1 row(s) with a null key (account_id, usage_date)"),
    ]


def test_written_files_hold_one_date_each_and_commit_cleanly(compute, tmp_path):
    rows = [
        {"account_id": f"A{i % 3}", "usage_date": DAY1 + dt.timedelta(days=i % 4)}
        | {"total_cost_usd": D(i) / 8, "effective_cost_usd": D(-i), "event_count": i, "service_count": 1}
        | {"data_complete": i % 2 == 0, "published_at": dt.datetime(2025, 2, 1, 0, 0, 0, i), "run_id": "r"}
        for i in range(40)
    ]
    table = pa.Table.from_pylist(rows, schema=DAILY_ACCOUNT.arrow_schema())
    compute.register_arrow("s3", table)
    out = tmp_path / "out"
    files = compute.write_partitions("SELECT * FROM s3", out, "usage_date")
    assert len(files) == 4 and files == sorted(files)
    assert sorted(p.name for p in out.rglob("*") if p.is_file() and p.suffix != ".parquet") == []
    check_partition_files(DAILY_ACCOUNT, files, {str(DAY1 + dt.timedelta(days=i)) for i in range(4)})
    for path in files:
        assert columns(pq.read_schema(path)) == columns(DAILY_ACCOUNT.arrow_schema())
        stamp = pq.ParquetFile(path).schema.column(DAILY_ACCOUNT.column_names.index("published_at"))
        assert stamp.physical_type == "INT64"  # micros, not INT96, and not adjusted to UTC:
        assert json.loads(stamp.logical_type.to_json())["isAdjustedToUTC"] is False
    back = pa.concat_tables(pq.read_table(p, schema=DAILY_ACCOUNT.arrow_schema()) for p in files)
    assert back.sort_by([("published_at", "ascending")]).to_pylist() == table.to_pylist()
    # Reading them back through the engine: no partition column appears from the folder names.
    compute.register_files("again", files, DAILY_ACCOUNT.arrow_schema())
    again = compute.fetch("SELECT * FROM again ORDER BY published_at")
    assert again.to_pylist() == table.to_pylist()
    assert compute.write_partitions("SELECT * FROM s3 WHERE false", tmp_path / "none", "usage_date") == []
    compute.register_files("nothing", [], DAILY_ACCOUNT.arrow_schema())
    assert compute.fetch("SELECT count(*) AS n FROM nothing").to_pylist() == [{"n": 0}]


def test_files_written_before_a_column_was_appended_read_it_as_null(compute: Engine, tmp_path: Path) -> None:
    # A warehouse outlives its table definitions (lake/migrate.py): raw files written before `op`,
    # `delivery_seq` and `usage_type` existed are read together with newer ones, by name, the missing
    # columns as NULL.
    older = raw({"event_id": "e1", "usage_date": DAY1, "billed_cost": D(1)}).drop_columns(
        ["op", "delivery_seq", "usage_type"]
    )
    newer = raw({"event_id": "e2", "batch_seq": 2, "op": "delete", "delivery_seq": 2, "usage_type": "U"})
    pq.write_table(older, tmp_path / "older.parquet")
    pq.write_table(newer, tmp_path / "newer.parquet")
    listing = ["older", "newer"]
    for files in (listing, listing[::-1], listing[:1]):
        compute.register_files("r", [str(tmp_path / f"{f}.parquet") for f in files], RAW.arrow_schema())
        assert compute.fetch("SELECT * FROM r").schema.names == RAW.column_names
        rows = compute.fetch("SELECT event_id, op, delivery_seq, usage_type FROM r ORDER BY event_id")
        expected = [{"event_id": "e1", "op": None, "delivery_seq": None, "usage_type": None}]
        newer_row = {"event_id": "e2", "op": "delete", "delivery_seq": 2, "usage_type": "U"}
        expected += [newer_row] if "newer" in files else []
        assert rows.to_pylist() == expected, files


@pytest.mark.parametrize("call", ["materialize", "fetch", "write_partitions"])
def test_a_signal_stops_a_long_duckdb_call_at_once(tmp_path: Path, call: str) -> None:
    """Python runs a signal's handler only between its own steps: Ctrl-C during a long DuckDB call
    waited for the query to finish (seconds at 10M events) before the command stopped."""
    import signal
    import subprocess
    import sys
    import time

    long = "SELECT i AS usage_date FROM range(100000000000) AS t(i) WHERE hash(i) % 1000003 = 0"
    args = {
        "materialize": f"'x', {long!r}",
        "fetch": f"{long!r}",
        "write_partitions": f"{long!r}, Path({str(tmp_path / 'out')!r}), 'usage_date'",
    }[call]
    code = (
        "from pathlib import Path\n"
        "from costlake.engines import create_engine\n"
        "from costlake.settings import Settings\n"
        f"engine = create_engine(Settings(warehouse={str(tmp_path / 'wh')!r}), Path({str(tmp_path)!r}))\n"
        "print('ready', flush=True)\n"
        "try:\n"
        f"    engine.{call}({args})\n"
        "except KeyboardInterrupt:\n"
        "    print('stopped', flush=True)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    time.sleep(2)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert out == "stopped\n", err
    assert time.monotonic() - sent < 10
