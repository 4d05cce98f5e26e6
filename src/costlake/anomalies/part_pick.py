"""Reading the part sums of event files (part_sums.py) for detection: the float parts of the mix
screen (`floats`) and the exact parts of causes and mix shifts (`exact`), for given series and days.

An entry holds a series' rows together, so picking a few series out of one is a binary search of its
series column and a slice, whatever the file's size. A day held in several files is summed across
them, exactly, by DuckDB (`add_split`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from costlake.anomalies.part_sums import DIMENSION_NAMES, EPOCH, PartSums, series_code, single
from costlake.duck import to_arrow

# The sums of days held in several files: each group's decimals added, then rounded once.
_SPLIT_SUMS = """
    SELECT row, day, dimension, value, sum(cost) AS cost, CAST(sum(cost) AS DOUBLE) AS fcost
    FROM part_sums_split GROUP BY row, day, dimension, value"""


def picked(sums: PartSums, keys: pa.Table, dimensions: Sequence[int], lo: dt.date) -> Iterator[_Picked]:
    """Per entry, its sums of the series `keys` (account_id, service_name) in `dimensions`,
    from `lo` on, as (rows of `keys`, days since 1970, dimensions, value indexes in the entry's
    dictionary `values`, the entry's row numbers): the callers keep what they want of them."""
    wanted = series_code(keys.column("account_id"), keys.column("service_name"))
    dims = np.zeros(len(DIMENSION_NAMES), dtype=bool)
    dims[list(dimensions)] = True
    start = (lo - EPOCH).days if lo > dt.date(1900, 1, 1) else -(1 << 30)
    for entry in sums.prepared():
        if entry.span[1] < start:
            continue
        row_of = pc.fill_null(pc.index_in(entry.series, value_set=wanted), -1).to_numpy()
        found = np.flatnonzero(row_of >= 0)  # the entry's rows of a series are together
        first = np.searchsorted(entry.series_index, found, "left")
        count = np.searchsorted(entry.series_index, found, "right") - first
        at = np.arange(count.sum()) + np.repeat(first - np.cumsum(count) + count, count)
        row = np.repeat(row_of[found], count)
        keep = dims[entry.dimension[at]]
        at, row = at[keep], row[keep]
        if entry.day is not None:
            later = entry.day[at] >= start
            at, row = at[later], row[later]
            day = entry.day[at]
        else:
            day = np.full(at.size, entry.span[0], dtype=np.int64)
        yield _Picked(
            entry.table,
            entry.span,
            row,
            day,
            entry.dimension[at],
            entry.value_index[at],
            entry.values,
            at,
        )


def floats(
    sums: PartSums, keys: pa.Table, begin: np.ndarray, end: np.ndarray, origin: dt.date
) -> dict[str, np.ndarray]:
    """Region and pricing-model sums of the series `keys` on their days [begin, end) (columns
    from `origin`), in floats: row (of `keys`), col, dimension (0 or 1), code (the value's rank
    among all values: the mix screen only tells them apart), cost."""
    if not keys.num_rows:
        return {name: np.zeros(0, dtype=np.float64 if name == "cost" else np.int64) for name in _FLOATS}
    shift = (origin - EPOCH).days
    pieces = []
    for piece in picked(sums, keys, (0, 1), origin + dt.timedelta(days=int(begin.min()))):
        col = piece.day - shift
        pieces.append(piece.keep((col >= begin[piece.row]) & (col < end[piece.row])))
    values = pa.array(sorted({v for p in pieces for v in p.values.to_pylist()}), pa.string())
    split = split_days(pieces)
    out: dict[str, list[np.ndarray]] = {name: [] for name in _FLOATS}
    shared = []
    for piece in pieces:
        if split:
            alone = ~np.isin(piece.day, np.fromiter(split, np.int64, len(split)))
            if not alone.all():
                shared.append(_exact_rows(piece.keep(~alone), piece.day[~alone]))
                piece = piece.keep(alone)
        rank = pc.index_in(piece.values, value_set=values).to_numpy(zero_copy_only=False)
        fcost = single(piece.entry, "fcost").to_numpy()[piece.at]
        _extend(out, piece.row, piece.day - shift, piece.dimension, rank[piece.value], fcost)
    if shared:
        summed = add_split(sums.con, pa.concat_tables(shared))
        rank = pc.index_in(summed.column("value"), value_set=values).to_numpy(zero_copy_only=False)
        day = summed.column("day").to_numpy()
        _extend(out, summed.column("row").to_numpy(), day - shift, summed.column("dimension").to_numpy(),
                rank, summed.column("fcost"))  # fmt: skip
    return {name: np.concatenate(parts).astype(_FLOATS[name], copy=False) for name, parts in out.items()}


def exact(sums: PartSums, keys: pa.Table, cells: pa.Table) -> pa.Table:
    """Exact sums of every dimension on the `cells` (row of `keys`, day: index from the row's
    `first_day`, usage_date): (row, day, dimension (its name), value, cost)."""
    first = np.array([(d - EPOCH).days for d in keys.column("first_day").to_pylist()], dtype=np.int64)
    cell_row = cells.column("row").to_numpy()
    cell_day = first[cell_row] + cells.column("day").to_numpy()
    base, span = int(cell_day.min()), int(cell_day.max() - cell_day.min()) + 1
    wanted = np.unique(cell_row * span + (cell_day - base))
    lo = EPOCH + dt.timedelta(days=base)
    pieces = []
    for piece in picked(sums, keys, range(len(DIMENSION_NAMES)), lo):
        inside = (piece.day >= base) & (piece.day < base + span)
        inside[inside] = np.isin(piece.row[inside] * span + (piece.day[inside] - base), wanted)
        pieces.append(piece.keep(inside))
    split = split_days(pieces)
    rows = pa.concat_tables([_exact_rows(p, p.day) for p in pieces]) if pieces else _EXACT.empty_table()
    if split:
        on = pc.is_in(rows.column("day"), pa.array(sorted(split), pa.int64()))
        summed = add_split(sums.con, rows.filter(on)).select(_EXACT.names).cast(_EXACT)
        rows = pa.concat_tables([rows.filter(pc.invert(on)), summed])
    row = rows.column("row").to_numpy()
    names = pa.array(DIMENSION_NAMES, pa.string()).take(rows.column("dimension").cast(pa.int64()))
    return pa.table(
        {
            "row": rows.column("row"),
            "day": pa.array(rows.column("day").to_numpy() - first[row], pa.int64()),
            "dimension": names,
            "value": rows.column("value"),
            "cost": rows.column("cost"),
        }
    ).sort_by(
        [("row", "ascending"), ("dimension", "ascending"), ("value", "ascending"), ("day", "ascending")]
    )


class _Picked:
    __slots__ = ("at", "day", "dimension", "entry", "row", "span", "value", "values")

    def __init__(
        self,
        entry: pa.Table,
        span: tuple[int, int],
        row: np.ndarray,
        day: np.ndarray,
        dimension: np.ndarray,
        value: np.ndarray,
        values: pa.Array,
        at: np.ndarray,
    ) -> None:
        self.entry, self.span, self.row, self.day, self.dimension = entry, span, row, day, dimension
        self.value, self.values, self.at = value, values, at

    def keep(self, mask: np.ndarray) -> _Picked:
        return _Picked(
            self.entry, self.span, self.row[mask], self.day[mask], self.dimension[mask], self.value[mask],
            self.values, self.at[mask],
        )  # fmt: skip

    def column(self, name: str) -> pa.Array:
        return self.entry.column(name).take(pa.array(self.at, pa.int64())).combine_chunks()


_FLOATS = {"row": np.int64, "col": np.int64, "dimension": np.int64, "code": np.int64, "cost": np.float64}
_EXACT = pa.schema(
    [
        ("row", pa.int64()),
        ("day", pa.int64()),
        ("dimension", pa.int8()),
        ("value", pa.string()),
        ("cost", pa.decimal128(38, 12)),
    ]
)


def _extend(out: dict[str, list[np.ndarray]], *columns: np.ndarray | pa.Array) -> None:
    for name, column in zip(_FLOATS, columns, strict=True):
        out[name].append(np.asarray(column))


def _exact_rows(piece: _Picked, day: np.ndarray) -> pa.Table:
    """(row, day, dimension, value, cost) of a piece's sums."""
    return pa.table(
        {
            "row": pa.array(piece.row, pa.int64()),
            "day": pa.array(day, pa.int64()),
            "dimension": pa.array(piece.dimension, pa.int8()),
            "value": piece.values.take(pa.array(piece.value, pa.int32())),
            "cost": piece.column("cost"),
        },
        schema=_EXACT,
    )


def split_days(pieces: Sequence[_Picked]) -> set[int]:
    """The days (since 1970) that more than one of the entries picked from may hold."""
    seen: dict[int, int] = {}
    for piece in pieces:
        for day in range(piece.span[0], piece.span[1] + 1):
            seen[day] = seen.get(day, 0) + 1
    return {day for day, count in seen.items() if count > 1}


def add_split(con: duckdb.DuckDBPyConnection, rows: pa.Table) -> pa.Table:
    """`rows` (row, day, dimension, value, cost) of days held in several files, summed per group:
    (row, day, dimension, value, cost, fcost)."""
    con.register("part_sums_split", rows)
    try:
        return to_arrow(con, _SPLIT_SUMS)
    finally:
        con.unregister("part_sums_split")
