"""The native CSV source: every kind of bad row is quarantined with its reason; bad files are refused."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import logging
import re
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from costlake.errors import InputError
from costlake.ops.publish import publish_and_detect
from costlake.pipeline.ingest import ingest_files
from costlake.settings import Settings
from costlake.tables import RAW
from helpers import NATIVE_TS_HEADER, SEED, changed_row, cli, query_rows

HEADER = (
    *NATIVE_TS_HEADER,
    "currency",
    "charge_category",
    "region",
    "pricing_model",
)
GOOD = [
    "ok",
    "2025-01-01",
    "A1",
    "EC2",
    "1.5",
    "2025-01-02 10:00:00",
    "USD",
    "usage",
    "us-east-1",
    "on_demand",
]


def bad(**change: str) -> list[str]:
    return changed_row(HEADER, GOOD, **change)


CASES = {
    "missing event_id": bad(event_id=""),
    "missing account_id": bad(event_id="b2", account_id="  "),
    "missing service_name": bad(event_id="b3", service_name=""),
    "cost_usd 'abc' is not a decimal number": bad(event_id="b4", cost_usd="abc"),
    "cost_usd '1,5' is not a decimal number": bad(event_id="b5", cost_usd="1,5"),
    "missing cost_usd": bad(event_id="b6", cost_usd=""),
    "cost_usd '0.1234567890123' has more than 12 decimal places": bad(
        event_id="b7", cost_usd="0.1234567890123"
    ),
    "usage_date '2025-13-45' is not a date (YYYY-MM-DD)": bad(event_id="b8", usage_date="2025-13-45"),
    "missing usage_date": bad(event_id="b9", usage_date=""),
    "usage_date '2025/1/5' is not a date (YYYY-MM-DD)": bad(event_id="b9b", usage_date="2025/1/5"),
    "currency EUR, no FX rates configured": bad(event_id="b10", currency="eur"),
    "currency 'US$' is not an ISO 4217 code": bad(event_id="b11", currency="US$"),
    "ingestion_ts 'yesterday' is not an ISO 8601 timestamp (YYYY-MM-DD[THH:MM[:SS]][Z|+HH:MM])": bad(
        event_id="b12", ingestion_ts="yesterday"
    ),
    "charge_category 'bonus' is not one of usage, purchase, tax, credit, adjustment": bad(
        event_id="b13", charge_category="bonus"
    ),
}


def test_every_kind_of_bad_row_is_quarantined_with_its_reason(wh, write_csv):
    rows = [GOOD, *CASES.values(), bad(event_id="two", account_id="", cost_usd="x")]
    path = write_csv("mixed.csv", rows, header=HEADER)
    [result] = ingest_files(wh, [path])
    assert (result.accepted, result.quarantined) == (1, len(CASES) + 1)
    got = query_rows(
        wh, "SELECT source_row, reason, raw_record, source_file FROM quarantine ORDER BY source_row"
    )
    assert [r["reason"] for r in got[:-1]] == list(CASES)
    # Several problems in one row: all of them are named.
    assert got[-1]["reason"] == "missing account_id; cost_usd 'x' is not a decimal number"
    assert [r["source_row"] for r in got] == list(range(2, len(CASES) + 3))
    record = json.loads(got[0]["raw_record"])
    assert record["event_id"] is None and record["account_id"] == "A1" and record["cost_usd"] == "1.5"
    assert got[3]["source_file"] == str(path.resolve())
    accepted = query_rows(wh, "SELECT event_id, billed_cost, currency, source_row FROM raw_billing_events")
    assert accepted == [
        {
            "event_id": "ok",
            "billed_cost": Decimal("1.5"),
            "currency": "USD",
            "source_row": 1,
        }
    ]


def test_e_notation_and_zeros_past_12_decimal_places_are_read_exactly(wh, write_csv):
    header = (*HEADER, "effective_cost_usd")
    rows = [
        [*bad(event_id="e1", cost_usd="1.5E-3"), "0.1000000000000000"],
        [*bad(event_id="e2", cost_usd="0.1000000000000000"), "-2.5e+2"],
        [*bad(event_id="e3", cost_usd="1.81E-8"), ""],  # blank effective cost: the billed cost
    ]
    [result] = ingest_files(wh, [write_csv("exact.csv", rows, header=header)])
    assert (result.accepted, result.quarantined) == (3, 0)
    got = query_rows(
        wh, "SELECT event_id, billed_cost, effective_cost FROM raw_billing_events ORDER BY source_row"
    )
    assert [(r["event_id"], r["billed_cost"], r["effective_cost"]) for r in got] == [
        ("e1", Decimal("0.0015"), Decimal("0.1")),
        ("e2", Decimal("0.1"), Decimal("-250")),
        ("e3", Decimal("0.0000000181"), Decimal("0.0000000181")),
    ]


def test_reporting_currency_accepts_its_own_rows(tmp_path, write_csv):
    from costlake.lake.warehouse import Warehouse

    wh = Warehouse(Settings(warehouse=str(tmp_path / "eur"), currency="eur"))
    path = write_csv("eur.csv", [bad(currency="EUR"), bad(event_id="u", currency="USD")], header=HEADER)
    [result] = ingest_files(wh, [path])
    assert (result.accepted, result.quarantined) == (1, 1)
    assert query_rows(wh, "SELECT reason FROM quarantine") == [
        {"reason": "currency USD, no FX rates configured"}
    ]


def test_defaults_for_optional_columns(wh, write_csv):
    path = write_csv(
        "minimal.csv",
        [["m1", "2025-01-01", "A1", "EC2", "2"]],
        header=("event_id", "usage_date", "account_id", "service_name", "cost_usd"),
    )
    [result] = ingest_files(wh, [path])
    row = query_rows(wh, "SELECT * FROM raw_billing_events")[0]
    assert (row["currency"], row["charge_category"], row["effective_cost"]) == (
        "USD",
        "usage",
        row["billed_cost"],
    )
    assert row["ingestion_ts"] is not None and row["load_date"] is not None
    assert row["usage_type"] is None
    assert result.accepted == 1


def test_usage_type_is_an_optional_name_trimmed_and_blank_as_null(wh, write_csv):
    header = ("event_id", "usage_date", "account_id", "service_name", "cost_usd", "usage_type")
    rows = [
        ["u1", "2025-01-01", "A1", "EC2", "2", "USE1-BoxUsage:m5.large"],
        ["u2", "2025-01-01", "A1", "EC2", "3", "  CW:Requests "],
        ["u3", "2025-01-01", "A1", "EC2", "4", " "],
    ]
    [result] = ingest_files(wh, [write_csv("typed.csv", rows, header=header)])
    assert (result.accepted, result.quarantined) == (3, 0)
    got = query_rows(wh, "SELECT event_id, usage_type FROM raw_billing_events ORDER BY event_id")
    assert [r["usage_type"] for r in got] == ["USE1-BoxUsage:m5.large", "CW:Requests", None]


def test_missing_columns_are_refused_in_one_line_with_exit_code_1(tmp_path, write_csv):
    path = write_csv("broken.csv", [["e1", "A1", "1"]], header=("event_id", "account_id", "cost"))
    done = cli(tmp_path / "wh", "ingest", str(path), "--format", "native")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    assert str(path) in lines[0]
    assert "usage_date, service_name, cost_usd" in lines[0]


def test_unknown_layout_is_refused_in_one_short_line_naming_each_format(tmp_path, write_csv):
    path = write_csv("weird.csv", [["1", "2"]], header=("foo", "bar"))
    done = cli(tmp_path / "wh", "ingest", str(path))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    [line] = [line for line in done.stderr.splitlines() if line.strip()]
    assert "unrecognised billing file layout" in line
    assert "native (event_id,usage_date,account_id,service_name,cost_usd)" in line
    assert "focus (BilledCost," in line and "cur (lineItem/UnblendedCost or line_item_unblended_cost" in line
    assert len(line) - len(str(path)) < 230, line  # it was ~1,100 characters


@pytest.mark.parametrize(
    ("delimiter", "looks"), [(";", "';'-separated"), ("\t", "tab-separated"), ("|", "'|'-separated")]
)
@pytest.mark.parametrize("fmt", ["auto", "native"])
def test_a_wrong_delimiter_gets_a_hint(wh, tmp_path, delimiter, looks, fmt):
    path = tmp_path / "semi.csv"
    path.write_text(delimiter.join(HEADER) + "\n" + delimiter.join(GOOD) + "\n")
    with pytest.raises(InputError) as refused:
        ingest_files(wh, [path], fmt)
    assert str(refused.value) == f"{path}: looks {looks}; costlake reads comma-separated CSV"


def test_a_directory_argument_is_named_as_a_directory(wh, tmp_path):
    folder = tmp_path / "bills"
    folder.mkdir()
    with pytest.raises(InputError, match="^.*bills: is a directory, not a file$"):
        ingest_files(wh, [folder])


def test_duplicate_event_ids_in_one_file_are_resolved_by_the_total_order_and_reported(wh, write_csv, caplog):
    rows = [
        bad(event_id="d1", cost_usd="1", ingestion_ts="2025-01-02 10:00:00"),
        bad(event_id="d1", cost_usd="2", ingestion_ts="2025-01-02 09:00:00"),  # older: loses
        bad(event_id="d2", cost_usd="3"),
        bad(event_id="d2", cost_usd="4"),  # same time, later row: wins
        bad(event_id="d2", cost_usd="5", ingestion_ts="2025-01-01T23:00:00-02:00"),  # 01:00 UTC: loses
        bad(event_id="u1", cost_usd="7"),
    ]
    with caplog.at_level(logging.INFO, logger="costlake.pipeline.ingest"):
        [result] = ingest_files(wh, [write_csv("dupes.csv", rows, header=HEADER)])
    assert (result.accepted, result.duplicates) == (6, 3)
    assert any("3 row(s) repeat an event_id" in r.getMessage() for r in caplog.records)
    publish_and_detect(wh)
    got = query_rows(wh, "SELECT event_id, billed_cost FROM normalized_billing_events ORDER BY 1")
    assert got == [
        {"event_id": "d1", "billed_cost": Decimal("1")},
        {"event_id": "d2", "billed_cost": Decimal("4")},
        {"event_id": "u1", "billed_cost": Decimal("7")},
    ]
    [single] = ingest_files(wh, [write_csv("single.csv", [bad(event_id="s1")], header=HEADER)])
    assert single.duplicates == 0


INGESTION_TIMES = {
    # as delivered -> UTC (naive values are UTC by definition)
    "2025-03-12T01:00:00+05:00": dt.datetime(2025, 3, 11, 20, 0),
    "2025-03-11 20:00:00-05:00": dt.datetime(2025, 3, 12, 1, 0),
    "2025-03-11T20:00:00Z": dt.datetime(2025, 3, 11, 20, 0),
    "2025-03-11t20:00:00z": dt.datetime(2025, 3, 11, 20, 0),
    "2025-03-11T20:00:00.250+0530": dt.datetime(2025, 3, 11, 14, 30, 0, 250000),
    "2025-03-11T23:30-01": dt.datetime(2025, 3, 12, 0, 30),
    "2025-03-11 20:00:00 +14:00": dt.datetime(2025, 3, 11, 6, 0),
    "2025-03-11 20:00": dt.datetime(2025, 3, 11, 20, 0),
    "2025-03-11": dt.datetime(2025, 3, 11, 0, 0),
}
NOT_TIMESTAMPS = [
    "2025-03-11T20:00:00+15:00",  # no such offset
    "2025-03-11T20:00:00+05:60",
    "2025-03-11 20:00:00 EST",  # zone names are ambiguous
    "2025-03-11+05:00",  # a zone needs a time
    "11/03/2025 20:00",
    "2025-3-11 20:00:00",
    "2025-03-11T25:00:00Z",
    "20250311T200000Z",
]


@pytest.mark.parametrize("column", ["ingestion_ts", "ingestion_date"])
def test_ingestion_times_are_iso_8601_converted_to_utc(wh, write_csv, column):
    header = tuple(column if c == "ingestion_ts" else c for c in HEADER)
    given = [*INGESTION_TIMES, *NOT_TIMESTAMPS]
    rows = [bad(event_id=f"t{i}", ingestion_ts=value) for i, value in enumerate(given)]
    [result] = ingest_files(wh, [write_csv("times.csv", rows, header=header)])
    assert (result.accepted, result.quarantined) == (len(INGESTION_TIMES), len(NOT_TIMESTAMPS))
    got = query_rows(wh, "SELECT ingestion_ts FROM raw_billing_events ORDER BY source_row")
    assert [r["ingestion_ts"] for r in got] == list(INGESTION_TIMES.values())
    reasons = query_rows(wh, "SELECT reason FROM quarantine ORDER BY source_row")
    form = "(YYYY-MM-DD[THH:MM[:SS]][Z|+HH:MM])"
    assert [r["reason"] for r in reasons] == [
        f"{column} '{value}' is not an ISO 8601 timestamp {form}" for value in NOT_TIMESTAMPS
    ]


NATIVE = "event_id,usage_date,account_id,service_name,cost_usd"


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        (f"{NATIVE}\ne1,2025-01-01,A1,EC2,1\ne2,2025-01-01\n", "malformed CSV"),
        (f"{NATIVE},Cost_USD\ne1,2025-01-01,A1,EC2,1,2\n", "column.s. cost_usd appear more than once"),
        (f"{NATIVE},Source_Row\ne1,2025-01-01,A1,EC2,1,5\n", "a column is named source_row, which costlake"),
    ],
    ids=["ragged", "repeated column", "the row-number column"],
)
def test_malformed_csv_is_refused_and_nothing_is_committed(wh, tmp_path, text, refusal):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=f"bad.csv: {refusal}"):
        ingest_files(wh, [path])
    assert query_rows(wh, "SELECT count(*) AS n FROM raw_billing_events") == [{"n": 0}]


@pytest.mark.parametrize(
    ("compression", "header"),
    [("none", NATIVE), ("gzip", NATIVE), ("none", '\ufeff"event_id"' + NATIVE.removeprefix("event_id"))],
    ids=["plain", "gzip", "byte-order mark and a quoted header"],
)
def test_mixed_line_endings_are_refused_with_the_first_line_that_differs(wh, tmp_path, compression, header):
    """DuckDB refuses such a file without a line number; the refusal names the line. Quoted fields
    with commas and doubled quotes are fields like any other, and a byte-order mark (Excel's "CSV
    UTF-8" writes one) is no part of the first field."""
    text = f'{header}\r\ne1,2025-01-01,A1,"EC2, ""x""",1\r\ne2,2025-01-01,A1,S3,2\r\ne3,2025-01-02,A1,S3,3\n'
    path = tmp_path / ("bad.csv.gz" if compression == "gzip" else "bad.csv")
    path.write_bytes(gzip.compress(text.encode()) if compression == "gzip" else text.encode())
    label = "gzip CSV" if compression == "gzip" else "CSV"
    refusal = f"malformed {label}: mixed line endings (line 4 ends with LF, line 1 with CRLF); "
    with pytest.raises(InputError, match=re.escape(f"{path.name}: {refusal}")):
        ingest_files(wh, [path])
    assert query_rows(wh, "SELECT count(*) AS n FROM raw_billing_events") == [{"n": 0}]


@pytest.mark.parametrize(
    "rows",
    [
        'e1,2025-01-01,A1,"EC2\r\nx",1\r\ne2,2025-01-01,A1,S3,2\n',  # a quoted line break first
        'e1,2025-01-01,A1,EC"2,1\r\ne2,2025-01-01,A1,S3,2\n',  # a quote inside an unquoted field
        "e1,2025-01-01,A1,E\rC2,1\r\ne2,2025-01-01,A1,S3,2\n",  # a bare CR
    ],
    ids=["quoted line break", "stray quote", "bare CR"],
)
def test_mixed_line_endings_are_not_blamed_on_a_line_duckdb_may_read_otherwise(wh, tmp_path, rows):
    """Past a line that is not one whole record of plain fields, line numbers are DuckDB's to give:
    the refusal says what DuckDB says, and names no line."""
    path = tmp_path / "bad.csv"
    path.write_bytes(f"{NATIVE}\r\n{rows}".encode())
    with pytest.raises(InputError, match="bad.csv: malformed CSV: ") as refused:
        ingest_files(wh, [path])
    assert "line ending" not in str(refused.value)


def test_a_quoted_line_break_in_a_crlf_file_is_kept(wh, tmp_path):
    path = tmp_path / "good.csv"
    path.write_bytes(f'{NATIVE}\r\ne1,2025-01-01,A1,"EC2\nx",1\r\ne2,2025-01-01,A1,S3,2\r\n'.encode())
    ingest_files(wh, [path])
    got = query_rows(wh, "SELECT service_name FROM raw_billing_events ORDER BY source_row")
    assert [r["service_name"] for r in got] == ["EC2\nx", "S3"]


@pytest.mark.parametrize("name", ["file_row_number", "File_Row_Number"])
def test_a_parquet_column_named_as_the_readers_row_number_is_refused_in_one_line(wh, tmp_path, name):
    """DuckDB's Parquet reader numbers rows under that name and cannot rename it."""
    path = tmp_path / "bad.parquet"
    row = {"event_id": "e1", "usage_date": "2025-01-01", "account_id": "A1", "service_name": "EC2"}
    pq.write_table(pa.table({k: [v] for k, v in (row | {"cost_usd": "1", name: "7"}).items()}), path)
    with pytest.raises(InputError, match="bad.parquet: a column is named file_row_number, which DuckDB"):
        ingest_files(wh, [path])
    assert query_rows(wh, "SELECT count(*) AS n FROM raw_billing_events") == [{"n": 0}]


def test_reingesting_the_same_file_is_a_no_op(tmp_path):
    first = cli(tmp_path / "wh", "ingest", str(SEED))
    assert first.returncode == 0, first.stderr
    assert "5 accepted, 0 quarantined" in first.stdout
    again = cli(tmp_path / "wh", "ingest", str(SEED))
    assert again.returncode == 0
    assert "already ingested as batch" in again.stdout and "nothing to do" in again.stdout
    counted = cli(tmp_path / "wh", "query", "SELECT count(*) AS n FROM raw_billing_events", "--format", "csv")
    assert counted.stdout.splitlines() == ["n", "5"]
    batches = cli(tmp_path / "wh", "query", "SELECT count(*) AS n FROM ingest_batches", "--format", "csv")
    assert batches.stdout.splitlines() == ["n", "1"]


def test_source_rows_follow_file_order_on_a_large_file(wh, tmp_path):
    path = tmp_path / "big.csv"
    lines = ["event_id,usage_date,account_id,service_name,cost_usd"]
    lines += [f"e{i},2025-01-01,A1,EC2,{i}" for i in range(1, 50_001)]
    path.write_text("\n".join(lines) + "\n")
    ingest_files(wh, [path])
    mismatched = query_rows(
        wh, "SELECT count(*) AS n FROM raw_billing_events WHERE 'e' || source_row <> event_id"
    )
    assert mismatched == [{"n": 0}]


@pytest.mark.parametrize("point", ["after_commit:quarantine", "before_commit:raw_billing_events"])
def test_a_crashed_ingest_leaves_no_batch_and_can_be_repeated(point, tmp_path, write_csv):
    import os
    import subprocess
    import sys

    from costlake.lake.faults import ENV, EXIT_CODE
    from costlake.lake.warehouse import Warehouse

    path = write_csv("mixed.csv", [GOOD, CASES["missing event_id"]], header=HEADER)
    command = [sys.executable, "-m", "costlake", "--warehouse", str(tmp_path / "wh"), "ingest", str(path)]
    crashed = subprocess.run(command, env=dict(os.environ, **{ENV: point}), capture_output=True, text=True)
    assert crashed.returncode == EXIT_CODE
    again = subprocess.run(command, capture_output=True, text=True)
    assert again.returncode == 0 and "1 accepted, 1 quarantined" in again.stdout, again.stdout + again.stderr
    wh = Warehouse(Settings(warehouse=str(tmp_path / "wh")))
    assert query_rows(wh, "SELECT count(*) AS n FROM raw_billing_events") == [{"n": 1}]
    assert query_rows(wh, "SELECT batch_seq, count(*) AS n FROM quarantine GROUP BY 1") == [
        {"batch_seq": 1, "n": 1}
    ]
    assert len(list(wh.staging_root(RAW).glob("batch_id=*"))) == 1


def test_a_row_without_ingestion_ts_keeps_its_ingestion_date_not_the_load_time(wh, write_csv):
    """Found by a review: with both columns in the header, a row whose ingestion_ts was blank took the
    batch's load time and ignored its ingestion_date, so an old version beat every correction made
    before the load; a delete row of that shape was refused meanwhile. Each row falls back on its own."""
    header = (
        "event_id",
        "usage_date",
        "account_id",
        "service_name",
        "cost_usd",
        "ingestion_date",
        "ingestion_ts",
        "op",
    )
    newer = ["x3", "2025-03-01", "A", "X", "40", "2025-03-01", "2025-03-02T00:00:00Z", ""]
    older = [
        ["x3", "2025-03-02", "A", "X", "41", "2025-03-01", "", ""],  # dated 03-01: loses to the 03-02 version
        ["x4", "2025-03-02", "A", "X", "7", "2025-03-03", "", ""],
        ["x4", "", "", "", "", "2025-03-02", "", "delete"],  # older than x4's version: x4 stays
        ["x5", "2025-03-02", "A", "X", "1", "", "", ""],  # neither: the load time
    ]
    ingest_files(wh, [write_csv("a.csv", [newer], header)])
    [result] = ingest_files(wh, [write_csv("b.csv", older, header)])
    assert result.quarantined == 0
    sql = "SELECT ingestion_ts FROM raw_billing_events WHERE batch_seq = 2 ORDER BY source_row"
    times = [r["ingestion_ts"] for r in query_rows(wh, sql)]
    assert times[:3] == [dt.datetime(2025, 3, 1), dt.datetime(2025, 3, 3), dt.datetime(2025, 3, 2)]
    assert times[3] > dt.datetime(2026, 1, 1)
    publish_and_detect(wh)
    events = query_rows(
        wh, "SELECT event_id, usage_date, billed_cost FROM normalized_billing_events ORDER BY 1"
    )
    assert [(e["event_id"], str(e["usage_date"]), e["billed_cost"]) for e in events] == [
        ("x3", "2025-03-01", Decimal("40")),
        ("x4", "2025-03-02", Decimal("7")),
        ("x5", "2025-03-02", Decimal("1")),
    ]
    # ingestion_date is read, and checked, only where ingestion_ts is blank (as before for the rest)
    odd = [["y1", "2025-03-02", "A", "X", "1", "03/01/2025", "2025-03-02T00:00:00Z", ""]]
    odd.append(["y2", "2025-03-02", "A", "X", "1", "03/01/2025", "", ""])
    [mixed] = ingest_files(wh, [write_csv("c.csv", odd, header)])
    assert (mixed.accepted, mixed.quarantined) == (1, 1)
    [reason] = query_rows(wh, f"SELECT reason FROM quarantine WHERE batch_id = '{mixed.batch_id}'")
    assert reason["reason"].startswith("ingestion_date '03/01/2025' is not an ISO 8601 timestamp")


def test_an_unknown_format_is_refused_for_a_file_already_ingested_too(wh):
    """A file already ingested is never read again, and `--format bogus` passed unchecked (exit 0)."""
    ingest_files(wh, [SEED])
    with pytest.raises(
        InputError, match=r"^unknown format 'bogus'; choose one of: auto, cur, focus, native$"
    ):
        ingest_files(wh, [SEED], fmt="bogus")
