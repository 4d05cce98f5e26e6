"""Mix shifts in dollars, and root causes over the whole episode."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import numpy as np
import pyarrow as pa
import pytest

from costlake.anomalies.analyse import ServiceSeries, analyse
from costlake.anomalies.detect import Params, detect
from costlake.anomalies.frame import SHIFT_DIMENSIONS, Frame, Parts
from costlake.anomalies.mix import _last_billed, _moves, calm_days, judgeable, screen
from costlake.anomalies.screen import candidates

P = Params(window=28, min_history=14)
DAYS = 70


def _series(total: list[D], regions: dict[str, list[D]]) -> ServiceSeries:
    parts = {("region", r): xs for r, xs in regions.items()}
    parts[("charge_category", "usage")] = list(total)
    parts[("pricing_model", "on_demand")] = list(total)
    return ServiceSeries("111111111111", "amazonec2", dt.date(2025, 1, 1), total, parts)


def _steady(level: int) -> list[D]:
    return [D(level) + D((i * 7) % 5) for i in range(DAYS)]


def test_a_mix_that_is_noise_every_day_never_alerts() -> None:
    """$1,000 a day over three regions in proportions redrawn every day: the mix moves hundreds of
    dollars daily and never for good."""
    rng = np.random.default_rng(5)
    total = _steady(1000)
    regions: dict[str, list[D]] = {r: [] for r in ("a", "b", "c")}
    for value in total:
        weights = rng.dirichlet([1, 1, 1])
        shares = [(value * D(str(round(w, 4)))).quantize(D("0.01")) for w in weights[:2]]
        for r, x in zip(regions, [*shares, value - sum(shares)], strict=True):
            regions[r].append(x)
    assert analyse(_series(total, regions), P) == []


def test_a_move_of_a_constant_mix_has_a_finite_score() -> None:
    """A mix that never moved (zero spread of daily moves) and then moves: the scale is floored at a
    cent, never zero, so the score is a number."""
    total = [D(500)] * DAYS
    east = [D(500)] * 40 + [D(0)] * 30
    west = [D(0)] * 40 + [D(500)] * 30
    [f] = analyse(_series(total, {"us-east-1": east, "us-west-2": west}), P)
    assert (f.index, f.kind, f.direction) == (40, "mix_shift", "shift")
    assert f.score is not None and 0 < f.score < D("1E+6")


def test_a_small_move_under_the_floors_is_not_a_shift() -> None:
    """$8 a day moving between regions of a $1,000 service is under the $10 and 60% floors."""
    total = _steady(1000)
    east = [x - (D(8) if i >= 40 else 0) for i, x in enumerate(total)]
    west = [D(8) if i >= 40 else D(0) for i in range(DAYS)]
    assert analyse(_series(total, {"us-east-1": east, "us-west-2": west}), P) == []


def test_the_cause_of_a_lasting_step_is_where_its_episode_spent() -> None:
    """A step up whose extra spend runs in eu-west-1 for a week, then in eu-central-1 for three: the
    cause named is eu-central-1, and contributions are never added across dimensions."""
    base = _steady(1000)
    total, home, first, second = [], [], [], []
    for i, x in enumerate(base):
        extra = D(1200) if i >= 35 else D(0)
        total.append(x + extra)
        home.append(x)
        first.append(extra if 35 <= i < 42 else D(0))
        second.append(extra if i >= 42 else D(0))
    series = _series(total, {"us-east-1": home, "eu-west-1": first, "eu-central-1": second})
    [f] = analyse(series, P)
    assert (f.index, f.kind, f.duration) == (35, "step_up", DAYS - 35)
    top = f.contributors[0]
    assert (top.dimension, top.value) == ("region", "eu-central-1")
    assert top.contribution == D(1200) * 28 / 35  # the episode's mean: 28 of its 35 days
    # Every contribution is one value of one dimension; the regions' sum to the step, so do the
    # pricing models' and the charge categories': the three views are never summed.
    by_dimension: dict[str, D] = {}
    for c in f.contributors:
        by_dimension[c.dimension] = by_dimension.get(c.dimension, D(0)) + c.contribution
    assert by_dimension["region"] == D(1200)


def test_a_mix_of_a_few_line_items_a_day_that_flip_region_never_alerts() -> None:
    """$80-$120 a day in one or two line items, each in its account's home region three times in
    four: most days move nothing between regions, and some move everything. A median of those
    moves is zero; the spread of a shift's day is taken from their tail as well, so such a mix
    never alerts. Days without charges (one in six) move nothing and are not part of that history."""
    for seed in range(12):
        rng = np.random.default_rng(seed)
        total, home, away = [], [], []
        for _ in range(DAYS):
            value = D(0) if rng.random() < 1 / 6 else D(f"{rng.uniform(80, 120):.2f}")
            items = [value] if rng.random() < 0.5 else [value * D("0.6"), value * D("0.4")]
            there = [rng.random() < 0.75 for _ in items]
            total.append(value)
            home.append(sum((x for x, h in zip(items, there, strict=True) if h), D(0)))
            away.append(value - home[-1])
        found = analyse(_series(total, {"us-east-1": home, "eu-west-1": away}), P)
        assert [f for f in found if f.kind == "mix_shift"] == [], seed


def test_a_region_shift_of_a_service_billed_every_other_day_is_found() -> None:
    """Days without charges are skipped, not counted as breaks: the moves between billed days two
    days apart are the series' history, so its mix can be judged."""
    total = [D(1000) if d % 2 == 0 else D(0) for d in range(84)]
    east = [v if d < 56 else D(0) for d, v in enumerate(total)]
    west = [v if d >= 56 else D(0) for d, v in enumerate(total)]
    parts = {("region", "us-east-1"): east, ("region", "eu-west-1"): west}
    parts[("pricing_model", "on_demand")] = parts[("charge_category", "usage")] = total
    series = ServiceSeries("111111111111", "amazonec2", dt.date(2025, 1, 1), total, parts)
    assert [f.kind for f in analyse(series, P)] == ["mix_shift"]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # means of empty windows, NaN by design
def test_moves_computed_in_blocks_of_whole_series_equal_one_pass() -> None:
    """`_moves` cuts its value rows into blocks at series boundaries (its temporaries stay small):
    bit for bit the result of one pass, whatever the block size."""
    rng = np.random.default_rng(5)
    series, n = 40, 60
    owner = np.sort(rng.integers(0, series, 300))
    values = rng.lognormal(0, 2, (owner.size, n)) * (rng.random((owner.size, n)) < 0.6)
    values[rng.random(values.shape) < 0.05] = np.nan
    totals = np.zeros((series, n))
    np.add.at(totals, owner, np.nan_to_num(values))
    last = _last_billed(totals)
    whole = _moves(values, owner, last, P, block=10**6)
    for block in (1, 7, 64):
        parts = _moves(values, owner, last, P, block=block)
        assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(parts, whole, strict=True)), block


def _screened(s: ServiceSeries) -> dict[int, float]:
    """The mix screen's days of one series, with their moved dollars, as the job gets them."""
    n = len(s.total)
    totals = np.array([[float(v) for v in s.total]])
    parts = {
        dim: Parts(np.zeros(len(rows), dtype=np.int64), np.array([[float(v) for v in xs] for xs in rows]))
        for dim in SHIFT_DIMENSIONS
        for rows in [[xs for (d, _), xs in sorted(s.parts.items()) if d == dim]]
    }
    start = np.zeros(1, dtype=np.int64)
    frame = Frame([("a", "s")], s.start, start, np.array([n]), start, totals, parts, pa.table({}))
    opens, expected, _ = candidates(totals, start, np.ones(1, dtype=bool), P)
    moved = screen(frame, calm_days(expected, totals, start, opens.any(axis=1), P.window), P, start)[0]
    days = np.flatnonzero(~np.isnan(moved))
    return dict(zip(days.tolist(), moved[days].tolist(), strict=True))


@pytest.mark.parametrize(("share", "shifts"), [(D("0.4"), 0), (D("0.8"), 1)])
def test_a_move_the_screen_sees_under_the_percent_floor_reads_no_part(share: D, shifts: int) -> None:
    """A lasting move of 40% of a steady $1,000 service between regions is far above the $ floor
    (the screen sees it) but under the 60% one, which only the analysed total's band gives: it is
    dropped before any part is read. A move of 80% is kept and found."""
    total = _steady(1000)
    moved = [(x * share).quantize(D("0.01")) if i >= 40 else D(0) for i, x in enumerate(total)]
    east = [x - m for x, m in zip(total, moved, strict=True)]
    s = _series(total, {"us-east-1": east, "us-west-2": moved})
    days = _screened(s)
    assert any(38 <= t <= 41 for t in days), "the screen lets the move through"
    kept = judgeable(s.total, detect(s.total, P), days, P)
    assert kept <= set(days) and bool(kept) == bool(shifts)
    found = analyse(s, P, mix_days=kept)
    assert found == analyse(s, P)
    assert [(f.index, f.kind) for f in found] == [(40, "mix_shift")] * shifts


@pytest.mark.parametrize("huge", ["1E+17", "1E+15"])
def test_a_move_after_a_charge_and_a_credit_that_cancel_is_judged_as_without_them(huge: str) -> None:
    """On the first day one region is charged `huge` dollars and another credited as much: the
    total does not move, but the screen's running sums carry the huge value ever after and its
    float moves lose their cents. A lasting move of 60.3% of a $1,000 service on day 40, just over
    the percent floor, must still reach the exact judgement and be found."""
    total = _steady(1000)
    west = [(x * D("0.3137")).quantize(D("0.01")) + (D("603") if i >= 40 else 0) for i, x in enumerate(total)]
    east = [x - w for x, w in zip(total, west, strict=True)]
    east[0], west[0] = east[0] + D(huge), west[0] - D(huge)
    s = _series(total, {"us-east-1": east, "us-west-2": west})
    reference = analyse(s, P)
    assert (40, "mix_shift") in [(f.index, f.kind) for f in reference]
    days = _screened(s)
    kept = judgeable(s.total, detect(s.total, P), days, P)
    assert analyse(s, P, mix_days=kept) == reference
