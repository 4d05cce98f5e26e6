"""Float parts are the same matrices however many distinct values a dimension has: a few regions
(numbered over a dense range) or a hostile file's hundreds of thousands (numbered by sorting)."""

from __future__ import annotations

import numpy as np

from costlake.anomalies.frame import _parts


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
