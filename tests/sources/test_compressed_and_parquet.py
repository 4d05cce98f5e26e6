"""Compressed and columnar deliveries: gzip and zstd CSV, FOCUS and CUR 2.0 Parquet.

Each is compared with the plain CSV it was made from: the same accepted rows, the same totals. The file
kind comes from its first bytes, a damaged stream is refused in one line, and a batch records the sha256
of the bytes as delivered.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from costlake.duck import connect, to_arrow
from costlake.errors import InputError
from costlake.lake.batches import registered_batches
from costlake.lake.warehouse import Warehouse
from costlake.pipeline.ingest import ingest_files
from costlake.settings import Settings
from costlake.sources.base import BatchContext
from costlake.sources.registry import source_for
from helpers import FIXTURES, cli, query_rows

FOCUS = FIXTURES / "focus" / "focus_1.0_sample.csv"
CUR = FIXTURES / "cur" / "aws_cur_legacy_sample.csv"
CUR2 = FIXTURES / "cur" / "cur2_line_item_types.csv"
CUR_UNBLENDED_TOTAL = Decimal("1.6823086974")
LOADED = dt.datetime(2025, 5, 6, 7, 8, 9)
Row = dict[str, Any]


def gzip_copy(src: Path, out: Path) -> Path:
    out.write_bytes(gzip.compress(src.read_bytes()))
    return out


def zstd_copy(src: Path, out: Path) -> Path:
    out.write_bytes(zstandard.ZstdCompressor().compress(src.read_bytes()))
    return out


COMPRESSORS = {"gzip": gzip_copy, "zstd": zstd_copy}


def parse(tmp_path: Path, path: Path) -> tuple[str, list[Row], list[Row]]:
    """(format, accepted rows, rejected rows) of `path`, format detected, rows in file order. Every file
    gets the same batch context, so rows of two deliveries of the same content compare equal."""
    con = connect(Settings(warehouse=str(tmp_path)), tmp_path, ordered=True)
    try:
        source = source_for(path)
        source.parse(con, path, BatchContext("b000001-abc", 1, "bill", LOADED, "USD"))
        accepted = to_arrow(con, "SELECT * FROM accepted ORDER BY source_row").to_pylist()
        rejected = to_arrow(con, "SELECT * FROM rejected ORDER BY source_row").to_pylist()
        return source.format, accepted, rejected
    finally:
        con.close()


def canonical(rows: list[Row]) -> list[Row]:
    """The rows without `raw_record` (a Parquet value's text is not the CSV's), tags as parsed JSON."""
    out = []
    for row in rows:
        row = {k: v for k, v in row.items() if k != "raw_record"}
        row["tags"] = None if row["tags"] is None else json.loads(row["tags"])
        out.append(row)
    return out


# ---------------------------------------------------------------- gzip and zstd CSV


@pytest.mark.parametrize("compression", sorted(COMPRESSORS))
@pytest.mark.parametrize(("fixture", "fmt", "count"), [(FOCUS, "focus", 1000), (CUR, "cur", 1281)])
def test_a_compressed_csv_gives_exactly_the_rows_of_the_plain_csv(tmp_path, compression, fixture, fmt, count):
    packed = COMPRESSORS[compression](fixture, tmp_path / f"{fixture.name}.{compression[:2]}")
    assert packed.stat().st_size < fixture.stat().st_size / 4
    plain = parse(tmp_path, fixture)
    assert parse(tmp_path, packed) == plain  # raw_record included: the same text, field by field
    assert plain[0] == fmt and len(plain[1]) == count and not plain[2]
    if fmt == "cur":
        assert sum(r["billed_cost"] for r in plain[1]) == CUR_UNBLENDED_TOTAL


def test_compression_is_told_by_the_first_bytes_not_the_name(tmp_path):
    plain_named_gz = tmp_path / "focus.csv.gz"
    plain_named_gz.write_bytes(FOCUS.read_bytes())
    gzip_named_csv = gzip_copy(FOCUS, tmp_path / "focus.csv")
    zstd_named_gz = zstd_copy(FOCUS, tmp_path / "focus.gz")
    expected = parse(tmp_path, FOCUS)
    for path in (plain_named_gz, gzip_named_csv, zstd_named_gz):
        assert parse(tmp_path, path) == expected, path.name


def test_a_zstd_file_of_several_frames_is_read_to_its_end(tmp_path):
    text = FOCUS.read_bytes()
    cut = text.index(b"\n", len(text) // 2) + 1
    compressor = zstandard.ZstdCompressor()
    framed = tmp_path / "focus.csv.zst"
    framed.write_bytes(compressor.compress(text[:cut]) + compressor.compress(text[cut:]))
    assert parse(tmp_path, framed) == parse(tmp_path, FOCUS)


def damaged_files(tmp_path: Path) -> dict[str, Path]:
    """Deliveries that must be refused whole: cut short, a bad checksum, a wrong container."""
    packed = gzip.compress(FOCUS.read_bytes())
    zstd = zstandard.ZstdCompressor().compress(FOCUS.read_bytes())
    bad_crc = bytearray(packed)
    bad_crc[-8] ^= 0xFF  # the CRC32 of the gzip trailer
    files = {
        "truncated gzip": (packed[: len(packed) // 2], "damaged or truncated gzip CSV"),
        "gzip with a wrong CRC": (bytes(bad_crc), "damaged or truncated gzip CSV"),
        "truncated zstd": (zstd[: len(zstd) // 2], "damaged or truncated zstd CSV"),
        # cut inside its first block, a small stream decompressed to nothing: it was an "empty file"
        "zstd cut in its first block": (
            zstandard.ZstdCompressor(write_checksum=False).compress(FOCUS.read_bytes()[:300])[:-1],
            "damaged or truncated zstd CSV",
        ),
        "zip archive": (b"PK\x03\x04" + packed, "a zip archive"),
        "truncated parquet": (b"PAR1" + packed[:100], "not a readable Parquet file"),
    }
    out = {}
    for i, (name, (data, _)) in enumerate(files.items()):
        path = tmp_path / f"bill{i}.csv.gz"
        path.write_bytes(data)
        out[name] = path
    return {f"{name}|{files[name][1]}": path for name, path in out.items()}


def test_a_damaged_or_truncated_file_is_refused_in_one_line_naming_it(tmp_path):
    wh = Warehouse(Settings(warehouse=str(tmp_path / "wh")))
    for key, path in damaged_files(tmp_path).items():
        name, message = key.split("|")
        with pytest.raises(InputError) as info:
            ingest_files(wh, [path])
        text = str(info.value)
        assert text.startswith(f"{path}: ") and message in text and "\n" not in text, (name, text)
    assert registered_batches(wh) == []  # nothing half-ingested


def test_a_truncated_gzip_through_the_cli_exits_1_with_one_line(tmp_path):
    packed = gzip.compress(CUR.read_bytes())
    cut = tmp_path / "my-cur-00001.csv.gz"
    cut.write_bytes(packed[: len(packed) * 2 // 3])
    done = cli(tmp_path / "wh", "ingest", str(cut))
    assert done.returncode == 1, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and str(cut) in lines[0] and "truncated gzip CSV" in lines[0]


def test_compressed_exports_ingest_through_the_cli_with_their_delivered_sha256(tmp_path):
    focus_gz = gzip_copy(FOCUS, tmp_path / "focus_2024-09.csv.gz")
    cur_zst = zstd_copy(CUR, tmp_path / "my-cur-00001.csv.zst")
    warehouse = tmp_path / "wh"
    done = cli(warehouse, "ingest", str(focus_gz), str(cur_zst))
    assert done.returncode == 0, done.stderr
    assert "1,000 accepted, 0 quarantined" in done.stdout and "1,281 accepted, 0 quarantined" in done.stdout
    again = cli(warehouse, "ingest", str(cur_zst))  # the same delivered bytes: a no-op
    assert again.returncode == 0 and "already ingested" in again.stdout, again.stderr

    wh = Warehouse(Settings(warehouse=str(warehouse)))
    wh.refresh()
    batches = registered_batches(wh)
    delivered = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (focus_gz, cur_zst)]
    assert [b.sha256 for b in batches] == delivered
    assert [(b.source_format, b.rows_accepted) for b in batches] == [("focus", 1000), ("cur", 1281)]
    sums = query_rows(
        wh, "SELECT source_format, sum(billed_cost) AS s FROM raw_billing_events GROUP BY 1 ORDER BY 1"
    )
    focus_total = sum(r["billed_cost"] for r in parse(tmp_path, FOCUS)[1])
    assert sums == [
        {"source_format": "cur", "s": CUR_UNBLENDED_TOTAL},
        {"source_format": "focus", "s": focus_total},
    ]


# ---------------------------------------------------------------- Parquet


def is_null(text: str) -> bool:
    return text.strip().upper() in ("", "NULL")


def utc_stamp(text: str) -> dt.datetime:
    """An ISO 8601 text as an aware UTC datetime; no zone is UTC."""
    stamp = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return stamp.replace(tzinfo=dt.UTC) if stamp.tzinfo is None else stamp.astimezone(dt.UTC)


def typed_parquet(src: Path, out: Path, *, money: pa.DataType, stamps: set[str], maps: set[str]) -> Path:
    """The CSV as an exporter would write Parquet: money as `money` (decimal or double), `stamps` as
    UTC timestamps, `maps` as map<string, string> from their JSON text, `NULL` and blanks as nulls,
    the rest text."""
    with src.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header, rows = next(reader), list(reader)
    columns: dict[str, pa.Array] = {}
    for i, name in enumerate(header):
        values = [None if is_null(row[i]) else row[i] for row in rows]
        if name.lower().endswith("cost"):
            scalar = Decimal if pa.types.is_decimal(money) else float
            columns[name] = pa.array([None if v is None else scalar(v) for v in values], money)
        elif name in stamps:
            stamped = [None if v is None else utc_stamp(v) for v in values]
            columns[name] = pa.array(stamped, pa.timestamp("us", tz="UTC"))
        elif name in maps:
            pairs = [None if v is None else list(json.loads(v).items()) for v in values]
            columns[name] = pa.array(pairs, pa.map_(pa.string(), pa.string()))
        else:
            columns[name] = pa.array(values, pa.string())
    pq.write_table(pa.table(columns), out)
    return out


FOCUS_STAMPS = {"BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd"}
CUR2_STAMPS = {"bill_billing_period_start_date", "line_item_usage_start_date"}


@pytest.mark.parametrize(
    ("money", "maps"),
    [(pa.decimal128(38, 12), {"Tags"}), (pa.float64(), set())],
    ids=["decimal money, map tags", "double money, text tags"],
)
def test_a_focus_parquet_export_gives_the_rows_of_its_csv(tmp_path, money, maps):
    parquet = typed_parquet(FOCUS, tmp_path / "focus.parquet", money=money, stamps=FOCUS_STAMPS, maps=maps)
    fmt, accepted, rejected = parse(tmp_path, parquet)
    _, expected, _ = parse(tmp_path, FOCUS)
    assert fmt == "focus" and len(accepted) == 1000 and not rejected
    assert canonical(accepted) == canonical(expected)


@pytest.mark.parametrize("money", [pa.decimal128(38, 12), pa.float64()], ids=["decimal", "double"])
def test_a_cur2_parquet_export_gives_the_rows_of_its_csv(tmp_path, money):
    parquet = typed_parquet(
        CUR2, tmp_path / "cur2.parquet", money=money, stamps=CUR2_STAMPS, maps={"resource_tags"}
    )
    fmt, accepted, rejected = parse(tmp_path, parquet)
    _, expected, expected_rejected = parse(tmp_path, CUR2)
    assert fmt == "cur" and len(accepted) == len(expected) == 16 and rejected == expected_rejected == []
    assert canonical(accepted) == canonical(expected)
    assert accepted[-1]["billed_cost"] == Decimal("0.0000000181")  # 1.81e-08 as a float, expanded as text


def test_parquet_files_ingest_like_their_csvs(tmp_path):
    wh = Warehouse(Settings(warehouse=str(tmp_path / "wh")))
    focus = typed_parquet(
        FOCUS, tmp_path / "focus.parquet", money=pa.decimal128(30, 14), stamps=FOCUS_STAMPS, maps={"Tags"}
    )
    cur2 = typed_parquet(CUR2, tmp_path / "cur2.parquet", money=pa.float64(), stamps=CUR2_STAMPS, maps=set())
    results = ingest_files(wh, [focus, cur2])
    assert [(r.source_format, r.accepted, r.quarantined) for r in results] == [
        ("focus", 1000, 0),
        ("cur", 16, 0),
    ]
    sums = query_rows(
        wh,
        """SELECT source_format, sum(billed_cost) AS b, sum(effective_cost) AS e FROM raw_billing_events
           GROUP BY 1 ORDER BY 1""",
    )
    expected = {fmt: parse(tmp_path, path)[1] for fmt, path in (("cur", CUR2), ("focus", FOCUS))}
    assert sums == [
        {
            "source_format": fmt,
            "b": sum(r["billed_cost"] for r in rows),
            "e": sum(r["effective_cost"] for r in rows),
        }
        for fmt, rows in expected.items()
    ]
    assert [b.sha256 for b in registered_batches(wh)] == [
        hashlib.sha256(p.read_bytes()).hexdigest() for p in (focus, cur2)
    ]
    assert ingest_files(wh, [cur2])[0].skipped


def test_a_double_cost_is_its_shortest_round_trip_text_never_more_exact(tmp_path):
    """A native Parquet file: 0.1 is 0.1 (not 0.1000000000000000055511151231257827), a float with digits
    beyond 12 decimal places and a non-number are quarantined like the same text in a CSV."""
    costs = [0.1, 0.2, 1.81e-08, 123456.789, 1e-13, float("inf")]
    table = pa.table(
        {
            "event_id": [f"e{i}" for i in range(len(costs))],
            "usage_date": pa.array([dt.date(2025, 3, 1)] * len(costs), pa.date32()),
            "account_id": ["111111111111"] * len(costs),
            "service_name": ["AmazonEC2"] * len(costs),
            "cost_usd": pa.array(costs, pa.float64()),
        }
    )
    path = tmp_path / "native.parquet"
    pq.write_table(table, path)
    fmt, accepted, rejected = parse(tmp_path, path)
    assert fmt == "native"
    exact = ("0.1", "0.2", "0.0000000181", "123456.789")
    assert [r["billed_cost"] for r in accepted] == [Decimal(t) for t in exact]
    assert [r["usage_date"] for r in accepted] == [dt.date(2025, 3, 1)] * 4
    assert [(r["source_row"], r["reason"]) for r in rejected] == [
        (5, "cost_usd '0.0000000000001' has more than 12 decimal places"),
        (6, "cost_usd 'inf' is not a decimal number"),
    ]


@pytest.mark.parametrize("second", ["BilledCost", "billedcost"])
def test_a_parquet_column_named_twice_is_refused_as_in_a_csv_header(tmp_path, second):
    """DuckDB reads the second one as billedcost_1: one of two costs was published, the other dropped."""
    parquet = typed_parquet(
        FOCUS, tmp_path / "focus.parquet", money=pa.float64(), stamps=FOCUS_STAMPS, maps=set()
    )
    table = pq.read_table(parquet)
    doubled = table.append_column(second, pa.array([999.0] * table.num_rows))
    pq.write_table(doubled, tmp_path / "doubled.parquet")
    with pytest.raises(InputError, match="billedcost appear more than once in the header"):
        parse(tmp_path, tmp_path / "doubled.parquet")


@pytest.mark.parametrize(
    ("added", "error"),
    [
        (["lineItem/UnblendedCost"], "CUR columns lineItem/UnblendedCost and lineItem/UnblendedCost are one"),
        (["line_item_unblended_cost"], "CUR columns lineItem/UnblendedCost and line_item_unblended_cost are"),
        (["lineitem/usageaccountid"], "CUR columns lineItem/UsageAccountId and lineitem/usageaccountid are"),
        (["resourceTags/user:Team"] * 2, "tag column resourceTags/user:Team appears more than once"),
    ],
)
def test_a_cur_column_named_twice_is_refused_not_one_of_its_values_dropped(tmp_path, added, error):
    with CUR.open(newline="", encoding="utf-8-sig") as handle:
        header, *rows = list(csv.reader(handle))
    doubled = tmp_path / "doubled.csv"
    with doubled.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header + added)
        writer.writerows(row + [str(n) for n in range(len(added))] for row in rows)
    with pytest.raises(InputError, match=error):
        parse(tmp_path, doubled)
    tags = ["resourceTags/user:Team", "resourceTags/user:team"]  # two tags: AWS tag keys are case-sensitive
    with doubled.open("w", newline="") as handle:
        csv.writer(handle).writerows([header + tags, *(row + ["a", "b"] for row in rows)])
    assert parse(tmp_path, doubled)[0] == "cur"


def test_a_header_wider_than_a_billing_file_can_be_is_refused_at_once(tmp_path):
    """DuckDB plans a query over every column in time that grows with their square, where no signal
    reaches it: 10,000 columns of one row took 78 s."""
    wide = tmp_path / "wide.csv"
    extra = [f"x{i}" for i in range(3000)]
    wide.write_text(
        ",".join(["event_id", "usage_date", "account_id", "service_name", "cost_usd", *extra]) + "\n"
    )
    with pytest.raises(
        InputError, match=r"wide.csv: 3,005 columns, more than the 2,000 a billing file can have"
    ):
        parse(tmp_path, wide)
