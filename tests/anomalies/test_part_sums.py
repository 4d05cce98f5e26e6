"""The part sums kept per event file (anomalies/part_sums.py, part_pick.py): detection's parts read from
them are the events' own sums, in exact decimals and in DuckDB's floats, bit for bit, with names that
try to collide, values missing or spelt "(none)", and a day held in several files; the cache reads
back what it wrote, sums again what it cannot trust, and keeps only the files the lake holds."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from costlake.anomalies.frame import _exact_cells, series_keys
from costlake.anomalies.job import update_anomalies
from costlake.anomalies.part_pick import exact, floats
from costlake.anomalies.part_sums import FORMAT, PARTS_DIR, PartSums, SumsAhead
from costlake.catalog.views import open_lake
from costlake.lake.warehouse import Warehouse
from costlake.pipeline.ingest import ingest_files
from costlake.pipeline.run import run_pipeline
from costlake.settings import Settings
from costlake.tables import ACCOUNT_SERVICE_DAY, DAILY_ACCOUNT, NORMALIZED

HEADER = ("event_id", "usage_date", "account_id", "service_name", "cost_usd", "region", "pricing_model",
          "charge_category", "usage_type", "ingestion_date")  # fmt: skip
START = dt.date(2025, 3, 1)
# Pairs whose plain joins would collide ("a:b" + "c" and "a" + "b:c"), services of several bytes per
# character holding the separator: the series code must keep them apart (accounts are ASCII ids).
SERIES = [("a:b", "c"), ("a", "b:c"), ("n1", "né:s"), ("n1:", "é:s")]


def _bill(path: Path, days: int, seed: int, bump: dict[tuple[str, int], str] | None = None) -> Path:
    rng = np.random.default_rng(seed)
    rows = []
    for d in range(days):
        day = (START + dt.timedelta(days=d)).isoformat()
        for s, (account, service) in enumerate(SERIES):
            for k in range(4):
                cost = f"{rng.integers(1, 10**6) / 10**4:.4f}"
                region = ["us-east-1", "", "(none)", "eu-west-1"][k]
                usage = ["", "BoxUsage", "Requests", ""][(k + d) % 4]
                charge = "credit" if k == 3 and d % 5 == 0 else ""
                rows.append([f"e{d}-{s}-{k}", day, account, service, cost, region, ["", "OnDemand"][k % 2],
                             charge, usage, day])  # fmt: skip
        for (account, day_number), value in (bump or {}).items():
            if day_number == d:
                rows.append(
                    [f"bump{d}-{account}", day, account, "c", value, "us-east-1", "", "", "Bumped", day]
                )
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


def _lake(tmp_path: Path, **settings: Any) -> Warehouse:
    wh = Warehouse(Settings(warehouse=str(tmp_path / "wh"), anomalies_on_run=False, **settings))
    ingest_files(wh, [_bill(tmp_path / "bill.csv", 12, seed=1)])
    run_pipeline(wh)
    return wh


def _reference(con: duckdb.DuckDBPyConnection, keys: pa.Table, cells: pa.Table) -> list[tuple[Any, ...]]:
    """The exact parts summed from the events (the readers' path), sorted."""
    got = _exact_cells(con, cells).to_pylist()
    return sorted((r["row"], r["day"], r["dimension"], r["value"], r["cost"]) for r in got)


def _cells(keys: pa.Table) -> pa.Table:
    rows: dict[str, list[Any]] = {
        "row": [],
        "account_id": [],
        "service_name": [],
        "usage_date": [],
        "day": [],
    }
    for row, k in enumerate(keys.to_pylist()):
        for d in range((k["last_day"] - k["first_day"]).days + 1):
            rows["row"].append(row)
            rows["account_id"].append(k["account_id"])
            rows["service_name"].append(k["service_name"])
            rows["usage_date"].append(k["first_day"] + dt.timedelta(days=d))
            rows["day"].append(d)
    return pa.table(rows)


def _float_reference(
    con: duckdb.DuckDBPyConnection, keys: pa.Table
) -> dict[tuple[int, int, int, str], float]:
    """(row, day, dimension, value): DuckDB's float of each day's exact region and pricing sums."""
    con.register("ref_keys", keys.append_column("row", pa.array(range(keys.num_rows), pa.int64())))
    try:
        got = con.sql("""
            SELECT k.row, CAST(date_diff('day', DATE '1970-01-01', e.usage_date) AS BIGINT) AS day, d.dim,
                   CASE d.dim WHEN 0 THEN COALESCE(e.region, '(none)')
                              ELSE COALESCE(e.pricing_model, '(none)') END AS value,
                   CAST(sum(e.billed_cost) AS DOUBLE) AS cost
            FROM normalized_billing_events e JOIN ref_keys k USING (account_id, service_name),
                 (VALUES (0), (1)) AS d(dim)
            WHERE e.usage_date <= k.last_day
            GROUP BY ALL""").fetchall()  # fmt: skip
    finally:
        con.unregister("ref_keys")
    return {(r, d, dim, v): c for r, d, dim, v, c in got}


def _open(wh: Warehouse) -> tuple[duckdb.DuckDBPyConnection, PartSums, pa.Table]:
    con = open_lake(wh, tables=[ACCOUNT_SERVICE_DAY.name, NORMALIZED.name, DAILY_ACCOUNT.name])
    sums = PartSums(wh, con, wh.data_files(NORMALIZED, fetch=False))
    return con, sums, series_keys(con, None)


def _check_against_events(wh: Warehouse) -> PartSums:
    con, sums, keys = _open(wh)
    try:
        pairs = zip(
            keys.column("account_id").to_pylist(), keys.column("service_name").to_pylist(), strict=True
        )
        assert sorted(pairs) == sorted(SERIES)
        cells = _cells(keys)
        got = exact(sums, keys, cells).to_pylist()
        assert sorted((r["row"], r["day"], r["dimension"], r["value"], r["cost"]) for r in got) == _reference(
            con, keys, cells
        )
        origin = min(keys.column("first_day").to_pylist())
        n = (max(keys.column("last_day").to_pylist()) - origin).days + 1
        begin, end = np.zeros(keys.num_rows, dtype=np.int64), np.full(keys.num_rows, n, dtype=np.int64)
        got_floats = floats(sums, keys, begin, end, origin)
        shift = (origin - dt.date(1970, 1, 1)).days
        # A code is the value's rank among the values the entries name (every dimension's).
        values = sorted(
            {v for e in sums.entries() for v in e.column("value").combine_chunks().dictionary.to_pylist()}
        )
        columns = (got_floats[k] for k in ("row", "col", "dimension", "code", "cost"))
        mine = {
            (int(r), int(c) + shift, int(dim), values[int(code)]): cost
            for r, c, dim, code, cost in zip(*columns, strict=True)
        }
        reference = _float_reference(con, keys)
        assert mine.keys() == reference.keys()
        assert all(mine[k] == reference[k] for k in reference)  # bit for bit: the same rounding
    finally:
        con.close()
    return sums


def test_the_sums_are_the_events_own_whatever_the_names(tmp_path: Path) -> None:
    wh = _lake(tmp_path)
    first = _check_against_events(wh)
    assert first.summed == len(first.locations) == 12  # one file per day, all summed
    again = _check_against_events(wh)
    assert again.summed == 0  # read back


def test_a_day_in_several_files_is_summed_across_them(tmp_path: Path) -> None:
    """A day split over two files (as an engine writing big days in parts would): its sums are
    added exactly before they are rounded, never floats added."""
    wh = _lake(tmp_path)
    day = START + dt.timedelta(days=4)
    [path] = wh.data_files(NORMALIZED, dates=[day])
    rows = pq.read_table(path)
    folder = wh.new_data_dir(NORMALIZED, "split")
    halves = [str(folder / f"half{i}.parquet") for i in range(2)]
    middle = rows.num_rows // 2
    pq.write_table(rows.slice(0, middle), halves[0])
    pq.write_table(rows.slice(middle), halves[1])
    wh.replace_partitions(NORMALIZED, [day], halves, {"run_id": "split"})
    wh.refresh()
    assert len(wh.data_files(NORMALIZED, dates=[day])) == 2
    _check_against_events(wh)


def test_entries_that_cannot_be_trusted_are_summed_again(tmp_path: Path) -> None:
    wh = _lake(tmp_path)
    con, sums, _ = _open(wh)
    try:
        sums.entries()
    finally:
        con.close()
    first, second, third = (sums.path(loc) for loc in sums.locations[:3])
    first.write_bytes(first.read_bytes()[:100])  # cut short
    second.write_bytes(b"not an arrow file")
    # An entry summed from another file at the same location (its size differs from the file's now).
    entry = pa.ipc.open_file(pa.memory_map(str(third))).read_all()
    meta = dict(entry.schema.metadata) | {b"source_bytes": b"1"}
    with pa.OSFile(str(third), "wb") as sink, pa.ipc.new_file(sink, entry.schema.with_metadata(meta)) as out:
        out.write_table(entry.replace_schema_metadata(meta))
    checked = _check_against_events(wh)
    assert checked.summed == 3


def test_an_unwritable_cache_still_gives_the_sums(tmp_path: Path) -> None:
    wh = _lake(tmp_path)
    (wh.root / PARTS_DIR).write_text("a file where the folder would go")
    first = _check_against_events(wh)
    second = _check_against_events(wh)
    assert first.summed == second.summed == 12  # nothing kept: summed each time, and right


def test_prune_keeps_only_the_files_the_lake_holds(tmp_path: Path) -> None:
    wh = _lake(tmp_path)
    con, sums, _ = _open(wh)
    try:
        sums.entries()
        old = wh.root / PARTS_DIR / "v0" / "ab"
        old.mkdir(parents=True)
        (old / "x.arrow").write_bytes(b"old format")
        stray = sums.path(sums.locations[0]).parent / ".tmp-stopped.arrow"
        stray.write_bytes(b"a write that was stopped")
        kept = PartSums(wh, con, sums.locations[1:])
        kept.prune()
    finally:
        con.close()
    assert not (wh.root / PARTS_DIR / "v0").exists()
    assert not stray.exists()
    assert not sums.path(sums.locations[0]).exists()
    assert all(sums.path(loc).exists() for loc in sums.locations[1:])
    assert sorted(p.parent.parent.name for p in (wh.root / PARTS_DIR).rglob("*.arrow")) == [FORMAT] * 11


def test_a_change_of_one_dimension_alone_is_a_change(tmp_path: Path) -> None:
    """Comparing the files that went with those that came finds a series whose cost only moved
    between usage types (same total, region and pricing), and no series when a re-delivery changed
    nothing."""
    wh = _lake(tmp_path)
    con, sums, _ = _open(wh)
    old = list(sums.locations)
    con.close()
    rows = []
    with (tmp_path / "bill.csv").open() as handle:
        for row in csv.reader(handle):
            if row[0] == "e6-0-1":  # series ("a:b", "c"), day 6: BoxUsage or Requests -> another type
                row[8] = "Moved"
            rows.append(row)
    moved = tmp_path / "moved.csv"
    with moved.open("w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    ingest_files(wh, [moved])
    run_pipeline(wh)
    wh.refresh()
    con, sums, _ = _open(wh)
    try:
        new = set(sums.locations)
        gone, came = sorted(set(old) - new), sorted(new - set(old))
        assert came  # every day re-delivered: new files
        found = sums.differing(gone, came)
        assert found == [(("a:b", "c"), START + dt.timedelta(days=6), START + dt.timedelta(days=6))]
        assert sums.differing(came, came) == []
    finally:
        con.close()


def test_a_run_sums_its_event_files_ahead_of_detection(tmp_path: Path) -> None:
    """SumsAhead, told of the run's committed event files, sums them on a thread while the run
    goes on: detection then reads every entry back and sums none."""
    wh = Warehouse(Settings(warehouse=str(tmp_path / "wh"), anomalies_on_run=False))
    ingest_files(wh, [_bill(tmp_path / "bill.csv", 12, seed=1)])
    ahead = SumsAhead(wh)
    run_pipeline(wh, committed=ahead.committed)
    ahead.join()
    wh.refresh()
    con, sums, _ = _open(wh)
    try:
        assert all(sums.path(loc).exists() for loc in sums.locations)
        sums.entries()
        assert sums.summed == 0
    finally:
        con.close()
    report = update_anomalies(wh)
    assert report.full


def test_detection_keeps_the_sums_of_the_files_it_read(tmp_path: Path) -> None:
    wh = Warehouse(Settings(warehouse=str(tmp_path / "wh"), anomalies_on_run=False))
    ingest_files(wh, [_bill(tmp_path / "bill.csv", 40, seed=1)])
    run_pipeline(wh)
    update_anomalies(wh)
    kept = wh.root / PARTS_DIR / FORMAT
    assert len(list(kept.rglob("*.arrow"))) == 40
    ingest_files(wh, [_bill(tmp_path / "more.csv", 42, seed=1, bump={("a:b", 41): "5000"})])
    run_pipeline(wh)
    report = update_anomalies(wh)
    assert not report.full
    assert len(list(kept.rglob("*.arrow"))) == 42  # the files of the two new days too


def test_sums_ahead_never_fail_or_hold_up_the_run(tmp_path: Path) -> None:
    """A run that fails or is interrupted stops the thread's query (`join(stop=True)`) and waits
    for it; a file it cannot read is logged, not raised; detection sums whatever is missing."""
    wh = _lake(tmp_path)
    files = wh.data_files(NORMALIZED)
    broken = SumsAhead(wh)
    broken.committed(NORMALIZED, [str(tmp_path / "no-such-file.parquet")])
    broken.join()  # its error stays on the thread
    stopped = SumsAhead(wh)
    stopped.committed(NORMALIZED, files)
    stopped.join(stop=True)
    con, sums, _ = _open(wh)
    try:
        sums.entries()  # whatever the stopped thread kept reads back whole; the rest is summed
        assert sums.summed <= len(files)
    finally:
        con.close()
    assert not list((wh.root / PARTS_DIR).rglob(".tmp-*"))  # a stopped write leaves no half file
    _check_against_events(wh)
