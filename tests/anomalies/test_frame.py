"""How detection reads a batch of series: float parts are the same matrices however many distinct
values a dimension has (a few regions, numbered over a dense range, or a hostile file's hundreds of
thousands, numbered by sorting), and a missing value is one value with "(none)"."""

from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal
from pathlib import Path

import numpy as np

from costlake.anomalies.frame import _parts, exact_parts, exact_series, load_frame, load_parts, series_keys
from costlake.catalog.views import open_lake
from costlake.lake.warehouse import Warehouse
from costlake.settings import Settings
from costlake.tables import ACCOUNT_SERVICE_DAY, DAILY_ACCOUNT, NORMALIZED
from helpers import NATIVE_HEADER, ingest_and_run


def test_many_distinct_values_give_the_same_parts_as_a_few() -> None:
    rng = np.random.default_rng(3)
    cells = np.unique(
        np.stack([rng.integers(0, 40, 3000), rng.integers(0, 6, 3000), rng.integers(0, 30, 3000)]), axis=1
    )
    got = {"row": cells[0], "code": cells[1], "col": cells[2], "cost": rng.random(cells.shape[1])}
    inside = np.ones((40, 30), dtype=bool)
    inside[5, :10] = False
    few = _parts(got, 40, 30, inside)
    many = _parts({**got, "code": got["code"] * 250_000 + 7}, 40, 30, inside)  # the same values, spread out
    assert np.array_equal(few.owner, many.owner)
    assert np.array_equal(few.values, many.values, equal_nan=True)
    assert np.all(np.diff(few.owner) >= 0)
    assert np.isclose(
        np.nansum(few.values) + got["cost"][(got["row"] == 5) & (got["col"] < 10)].sum(), got["cost"].sum()
    )


def test_a_missing_region_and_one_spelt_none_are_one_value(tmp_path: Path) -> None:
    """A day's events without a region and those whose region reads "(none)" are one part, summed
    (not one of them lost), in the parts the job screens and analyses and in the reference's."""
    rows = []
    for i in range(30):
        day = (dt.date(2025, 1, 1) + dt.timedelta(days=i)).isoformat()
        rows += [[f"a{i}", day, "111111111111", "AmazonEC2", "", "100", day]]
        rows += [[f"b{i}", day, "111111111111", "AmazonEC2", "(none)", "250", day]]
        rows += [[f"c{i}", day, "111111111111", "AmazonEC2", "us-east-1", "7", day]]
    path = tmp_path / "bill.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow((*NATIVE_HEADER[:4], "region", *NATIVE_HEADER[4:]))
        writer.writerows(rows)
    wh = Warehouse(Settings(warehouse=str(tmp_path / "wh"), anomalies_on_run=False))
    ingest_and_run(wh, path)
    con = open_lake(wh, tables=[ACCOUNT_SERVICE_DAY.name, NORMALIZED.name, DAILY_ACCOUNT.name])
    try:
        keys = series_keys(con, None)
        frame = load_frame(con, keys)
        load_parts(con, frame, keys, np.ones(keys.num_rows, dtype=bool))
        exact = exact_parts(con, keys, [None])[("111111111111", "amazonec2")]
        reference = exact_series(con, keys)[("111111111111", "amazonec2")][1]
    finally:
        con.close()
    days = len(exact[("region", "(none)")])
    assert days >= 20
    for parts in (exact, reference):
        assert {k for k in parts if k[0] == "region"} == {("region", "(none)"), ("region", "us-east-1")}
        assert parts[("region", "(none)")] == [Decimal(350)] * days
    region = frame.parts["region"]
    assert sorted(np.nansum(region.values, axis=1).tolist()) == [7.0 * days, 350.0 * days]
