"""Series as matrices: the published daily costs of many (account, service) series at once.

Detection screens every series in floats, all at once (screen.py, mix.py), and reads exact decimals
only for the few series the screen cannot clear. A `Frame` is one batch of series over a common
calendar: row s is the series `keys[s]`, column c the day `origin + c`; a cell is NaN outside the
series' judged days (before its account's first day, after its last complete day) and before the day
the batch was loaded from, 0 where nothing was billed. `parts` holds the same for each value of region
and pricing model inside each series (the mix-shift screen).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from costlake.duck import to_arrow
from costlake.tables import NONE_VALUE

# The dimensions of root causes, in the order that breaks ties; usage type only where the source has one.
DIMENSIONS = ("region", "pricing_model", "charge_category", "usage_type")
SHIFT_DIMENSIONS = ("region", "pricing_model")
BATCH_SERIES = 6000  # series per batch: bounds the matrices (and DuckDB's results) in memory

# Each account's span of days: its first day, its last complete day (over {source}: daily_account_cost).
SPANS_OF = """
    SELECT account_id, min(usage_date) AS first_day,
           max(usage_date) FILTER (WHERE data_complete) AS last_day
    FROM {source} GROUP BY account_id"""
SPANS_SQL = SPANS_OF.format(source="daily_account_cost")


@dataclass
class Parts:
    """One dimension's values inside a frame's series: row v belongs to series `owner[v]`."""

    owner: np.ndarray  # (V,) series row, ascending
    values: np.ndarray  # (V, n) float, NaN where the owner's row is NaN


@dataclass
class Frame:
    keys: list[tuple[str, str]]
    origin: dt.date
    first: np.ndarray  # (S,) column of each series' first day (its account's first day)
    end: np.ndarray  # (S,) one past the column of its last judged day
    begin: np.ndarray  # (S,) first column loaded (analysis may start later, never earlier)
    totals: np.ndarray  # (S, n)
    parts: dict[str, Parts]
    exact: pa.Table  # (row, col, cost): the totals as read, in exact decimals (see `frame_totals`)
    # (S,) first column of the parts (None: `begin`); the mix screen reads a window back where the
    # totals read the billed history of `Params.reach`
    parts_begin: np.ndarray | None = None


def series_keys(con: duckdb.DuckDBPyConnection, scope: pa.Table | None) -> pa.Table:
    """(account_id, service_name, first_day, last_day, from_day, parts_from) of every series to
    analyse, sorted: every published series of an account with complete days, or those of `scope`
    (account_id, service_name, from_day[, parts_from]: the first day of its totals, of its parts)
    that still exist."""
    spans = f"({SPANS_SQL}) AS spans"
    if scope is None:
        sql = f"""
            SELECT DISTINCT t.account_id, t.service_name, spans.first_day, spans.last_day,
                   spans.first_day AS from_day, spans.first_day AS parts_from
            FROM account_service_day_cost t JOIN {spans} USING (account_id)
            WHERE spans.last_day IS NOT NULL ORDER BY 1, 2"""
        return to_arrow(con, sql)
    con.register("detection_scope", scope)
    parts = "s.parts_from" if "parts_from" in scope.column_names else "s.from_day"
    sql = f"""
        SELECT s.account_id, s.service_name, spans.first_day, spans.last_day,
               greatest(s.from_day, spans.first_day) AS from_day,
               greatest({parts}, s.from_day, spans.first_day) AS parts_from
        FROM detection_scope s JOIN {spans} USING (account_id)
        WHERE spans.last_day IS NOT NULL ORDER BY 1, 2"""
    try:
        return to_arrow(con, sql)
    finally:
        con.unregister("detection_scope")


def batches(keys: pa.Table, size: int = BATCH_SERIES) -> Iterator[pa.Table]:
    """Batches of at most `size` series, as even as can be (each batch costs a scan of the events:
    2,001 series are two batches of 1,000 and 1,001, not 2,000 and 1).

    >>> [b.num_rows for b in batches(pa.table({"k": range(2001)}), 2000)]
    [1000, 1001]
    """
    count = -(-keys.num_rows // size)
    for b in range(count):
        start, stop = keys.num_rows * b // count, keys.num_rows * (b + 1) // count
        yield keys.slice(start, stop - start)


def load_frame(con: duckdb.DuckDBPyConnection, keys: pa.Table) -> Frame:
    """The totals of the series `keys` (one batch of `series_keys`); `load_parts` adds their parts."""
    first_days = keys.column("first_day").to_pylist()
    origin = min(first_days)
    col = np.array([(d - origin).days for d in first_days], dtype=np.int64)
    end = np.array([(d - origin).days + 1 for d in keys.column("last_day").to_pylist()], dtype=np.int64)
    begin, parts_begin = (
        np.array([(d - origin).days for d in keys.column(name).to_pylist()], dtype=np.int64)
        for name in ("from_day", "parts_from")
    )
    n = int(end.max()) if keys.num_rows else 0
    with _keys(con, keys, np.ones(keys.num_rows, dtype=bool)):
        exact = to_arrow(con, _TOTALS_SQL.format(origin=origin.isoformat(), lo=_earliest(keys)))
    totals = np.zeros((keys.num_rows, n))
    cost = exact.column("fcost").to_numpy()  # DuckDB rounds decimals to the nearest float, as for the parts
    totals[exact.column("row").to_numpy(), exact.column("col").to_numpy()] = cost  # one row per day
    totals[~_inside(begin, end, n)] = np.nan
    keys_list = list(
        zip(keys.column("account_id").to_pylist(), keys.column("service_name").to_pylist(), strict=True)
    )
    return Frame(keys_list, origin, col, end, begin, totals, {}, exact, parts_begin)


def frame_totals(frame: Frame, rows: Sequence[int]) -> dict[tuple[str, str], list[Decimal]]:
    """`exact_totals` of the frame's series `rows`, from the decimals `load_frame` read."""
    out: dict[tuple[str, str], list[Decimal]] = {}
    series: dict[int, list[Decimal]] = {}
    for r in rows:
        length, skip = int(frame.end[r] - frame.first[r]), int(frame.begin[r] - frame.first[r])
        series[r] = out[frame.keys[r]] = _blank(length, range(skip, length))
    found = frame.exact.filter(pc.is_in(frame.exact.column("row"), pa.array(list(rows), pa.int64())))
    columns = (found.column(c).to_pylist() for c in ("row", "col", "cost"))
    for row, col, cost in zip(*columns, strict=True):
        series[row][col - int(frame.first[row])] = cost
    return out


def load_parts(con: duckdb.DuckDBPyConnection, frame: Frame, keys: pa.Table, wanted: np.ndarray) -> None:
    """Region and pricing-model parts of the frame's series where `wanted` (S,), into `frame.parts`
    (one scan for both)."""
    n = frame.totals.shape[1]
    with _keys(con, keys, wanted):
        lo = _earliest(keys, "parts_from")
        got = con.sql(_PARTS_SQL.format(origin=frame.origin.isoformat(), none=NONE_VALUE, lo=lo)).fetchnumpy()
    inside = _inside(frame.begin if frame.parts_begin is None else frame.parts_begin, frame.end, n)
    columns = {c: np.asarray(got[c], dtype=np.float64 if c == "cost" else np.int64) for c in got}
    frame.parts = {
        dim: _parts({c: v[columns["dimension"] == d] for c, v in columns.items()}, len(frame.keys), n, inside)
        for d, dim in enumerate(SHIFT_DIMENSIONS)
    }


@contextlib.contextmanager
def _keys(con: duckdb.DuckDBPyConnection, keys: pa.Table, wanted: np.ndarray) -> Iterator[None]:
    """`detection_keys`: the wanted rows of `keys` with their row number in the frame."""
    rows = keys.append_column("row", pa.array(np.arange(keys.num_rows), pa.int64())).filter(pa.array(wanted))
    con.register("detection_keys", rows)
    try:
        yield
    finally:
        con.unregister("detection_keys")


def _earliest(keys: pa.Table, column: str = "from_day") -> str:
    """The first day any of `keys` is loaded from (its `column`): a constant bound lets a scan skip
    the files of the days before it (the join's own bounds do not)."""
    return str(min(keys.column(column).to_pylist(), default=dt.date.min).isoformat())


_TOTALS_SQL = """
    SELECT k.row, CAST(date_diff('day', DATE '{origin}', t.usage_date) AS BIGINT) AS col,
           t.total_cost_usd AS cost, CAST(t.total_cost_usd AS DOUBLE) AS fcost
    FROM account_service_day_cost t JOIN detection_keys k USING (account_id, service_name)
    WHERE t.usage_date BETWEEN k.from_day AND k.last_day AND t.usage_date >= DATE '{lo}'"""

# Values are coded as integers (a code per dimension and value, in no particular order): the screen
# only needs to tell them apart, and strings would cost more to fetch than the sums themselves.
_PARTS_SQL = """
    WITH parts AS (
        SELECT row, col, CASE WHEN GROUPING(region) = 0 THEN 0 ELSE 1 END AS dimension,
               COALESCE(region, pricing_model) AS value, CAST(sum(billed_cost) AS DOUBLE) AS cost
        FROM (
            SELECT k.row, CAST(date_diff('day', DATE '{origin}', e.usage_date) AS BIGINT) AS col,
                   e.billed_cost, COALESCE(e.region, '{none}') AS region,
                   COALESCE(e.pricing_model, '{none}') AS pricing_model
            FROM normalized_billing_events e JOIN detection_keys k USING (account_id, service_name)
            WHERE e.usage_date BETWEEN k.parts_from AND k.last_day AND e.usage_date >= DATE '{lo}'
        ) AS e
        GROUP BY GROUPING SETS ((row, col, region), (row, col, pricing_model))
    ), codes AS (
        SELECT dimension, value, row_number() OVER () AS code
        FROM (SELECT DISTINCT dimension, value FROM parts)
    )
    SELECT row, col, dimension, code, cost
    FROM parts JOIN codes USING (dimension, value)
"""  # dimension: the index in SHIFT_DIMENSIONS; a missing value is one with a value spelt "(none)"


def _inside(begin: np.ndarray, end: np.ndarray, n: int) -> np.ndarray:
    days = np.arange(n)[None, :]
    return (days >= begin[:, None]) & (days < end[:, None])


def _parts(got: dict[str, np.ndarray], series: int, n: int, inside: np.ndarray) -> Parts:
    """One matrix row per (series, value) present, owners ascending; a cell per (series, value, day)
    of the query, so cells are set, not added."""
    row, code = got["row"], got["code"]
    if row.size == 0:
        return Parts(np.zeros(0, dtype=np.int64), np.zeros((0, n)))
    codes = int(code.max()) + 1
    key = row * codes + code
    if series * codes <= 4 * row.size + (1 << 20):  # a dense range: the pairs are numbered without a sort
        present = np.zeros(series * codes, dtype=bool)
        present[key] = True
        pairs = np.flatnonzero(present)
        number = (np.cumsum(present) - 1)[key]
    else:  # thousands of distinct values (hostile or odd data): sort instead of a huge range
        pairs, number = np.unique(key, return_inverse=True)
    values = np.zeros((pairs.size, n))
    values[number, got["col"]] = got["cost"]
    owner = pairs // codes
    values[~inside[owner]] = np.nan
    return Parts(owner, values)


Exact = tuple[list[Decimal], dict[tuple[str, str], list[Decimal]]]
PartDays = Sequence[Iterable[int] | None]


def exact_series(con: duckdb.DuckDBPyConnection, keys: pa.Table) -> dict[tuple[str, str], Exact]:
    """Exact daily totals and parts of the series `keys`, every day loaded (see `exact_totals` and
    `exact_parts`)."""
    totals = exact_totals(con, keys)
    parts = exact_parts(con, keys, [None] * keys.num_rows)
    return {key: (total, parts[key]) for key, total in totals.items()}


def exact_totals(con: duckdb.DuckDBPyConnection, keys: pa.Table) -> dict[tuple[str, str], list[Decimal]]:
    """Exact daily totals of the series `keys`, index 0 at each series' first day. Days before the
    day a series was loaded from hold None (typed as Decimal for its readers): the analysis resumes
    `Params.reach` days later, and no band, billed history or mix window reaches back that far, so
    reading one would be a bug that fails loudly."""
    with _keys(con, keys, np.ones(keys.num_rows, dtype=bool)):
        found = to_arrow(con, _EXACT_TOTALS)
    out: dict[tuple[str, str], list[Decimal]] = {}
    series: list[list[Decimal]] = []
    for k in keys.to_pylist():
        length = (k["last_day"] - k["first_day"]).days + 1
        skip = (k["from_day"] - k["first_day"]).days
        series.append(_blank(length, range(skip, length)))
        out[(k["account_id"], k["service_name"])] = series[-1]
    columns = (found.column(c).to_pylist() for c in ("row", "day", "cost"))
    for row, day, cost in zip(*columns, strict=True):
        series[row][day] = cost
    return out


def exact_parts(
    con: duckdb.DuckDBPyConnection, keys: pa.Table, days: PartDays
) -> dict[tuple[str, str], dict[tuple[str, str], list[Decimal]]]:
    """Exact daily parts (every dimension) of the series `keys`, on the days `days[row]` of each
    (indexes from its first day; None: every day it was loaded from). Other days hold None, so that
    an analysis reading a day it did not ask for fails loudly; the job reads only the days a series'
    findings and mix-shift candidates need (`analyse.parts_days`), a small share of most series."""
    out: dict[tuple[str, str], dict[tuple[str, str], list[Decimal]]] = {}
    blanks: list[list[Decimal]] = []
    cells: dict[str, list[Any]] = {name: [] for name in _CELLS.names}
    for row, (k, wanted) in enumerate(zip(keys.to_pylist(), days, strict=True)):
        length = (k["last_day"] - k["first_day"]).days + 1
        skip = (k["from_day"] - k["first_day"]).days
        wanted = range(skip, length) if wanted is None else wanted
        inside = sorted({d for d in wanted if skip <= d < length})
        blanks.append(_blank(length, inside))
        out[(k["account_id"], k["service_name"])] = {}
        for d in inside:
            cells["row"].append(row)
            cells["account_id"].append(k["account_id"])
            cells["service_name"].append(k["service_name"])
            cells["usage_date"].append(k["first_day"] + dt.timedelta(days=d))
            cells["day"].append(d)
    if not cells["row"]:
        return out
    table = pa.table(cells, schema=_CELLS)
    con.register("detection_cells", table)
    try:
        dates = ", ".join(f"DATE '{d.isoformat()}'" for d in sorted(set(cells["usage_date"])))
        found = to_arrow(con, _EXACT_PARTS.format(none=NONE_VALUE, dates=dates))
    finally:
        con.unregister("detection_cells")
    series = list(out.values())
    columns = (found.column(c).to_pylist() for c in ("row", "day", "dimension", "value", "cost"))
    for row, day, dimension, value, cost in zip(*columns, strict=True):
        parts = series[row]
        key = (dimension, value)
        if key not in parts:
            parts[key] = list(blanks[row])
        parts[key][day] = cost
    return out


_CELLS = pa.schema(
    [
        ("row", pa.int64()),
        ("account_id", pa.string()),
        ("service_name", pa.string()),
        ("usage_date", pa.date32()),
        ("day", pa.int64()),
    ]
)


def _blank(length: int, days: Iterable[int]) -> list[Decimal]:
    """None everywhere but on `days`, which start at 0."""
    out = cast("list[Decimal]", [None] * length)
    for d in days:
        out[d] = Decimal(0)
    return out


_EXACT_TOTALS = """
    SELECT k.row, CAST(date_diff('day', k.first_day, t.usage_date) AS BIGINT) AS day, t.total_cost_usd AS cost
    FROM account_service_day_cost t JOIN detection_keys k USING (account_id, service_name)
    WHERE t.usage_date BETWEEN k.from_day AND k.last_day"""

# One scan for every dimension; usage type only where the source has one. A missing value is grouped
# as "(none)", together with a value spelt so (one value to every reader). The constant list of the
# cells' days lets the scan skip the files of other days.
_EXACT_PARTS = """
    SELECT row, day, dimension, value, cost FROM (
        SELECT row, day,
               CASE WHEN GROUPING(region) = 0 THEN 'region'
                    WHEN GROUPING(pricing_model) = 0 THEN 'pricing_model'
                    WHEN GROUPING(charge_category) = 0 THEN 'charge_category'
                    ELSE 'usage_type' END AS dimension,
               COALESCE(region, pricing_model, charge_category, usage_type) AS value,
               sum(billed_cost) AS cost
        FROM (
            SELECT c.row, c.day, e.billed_cost, e.usage_type,
                   COALESCE(e.region, '{none}') AS region,
                   COALESCE(e.pricing_model, '{none}') AS pricing_model,
                   COALESCE(e.charge_category, '{none}') AS charge_category
            FROM normalized_billing_events e
            JOIN detection_cells c USING (account_id, service_name, usage_date)
            WHERE e.usage_date IN ({dates})
        ) AS e
        GROUP BY GROUPING SETS (
            (row, day, region), (row, day, pricing_model), (row, day, charge_category), (row, day, usage_type)
        )
    ) WHERE dimension <> 'usage_type' OR value IS NOT NULL"""
