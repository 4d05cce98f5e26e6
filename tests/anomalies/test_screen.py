"""The float screens decide nothing: whatever they let through or hold back, the findings are those of
the exact analysis of every day. Checked on heavy-tailed, intermittent and steady series, with level
shifts, spikes and moves between regions."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costlake.anomalies import chunks
from costlake.anomalies.analyse import ServiceSeries, analyse
from costlake.anomalies.bands import NOISY_SPREAD, Band, exact_ordinary, noise_spread, noisy, ordinary
from costlake.anomalies.detect import Params, detect, detect_baseline
from costlake.anomalies.frame import SHIFT_DIMENSIONS, Frame, Parts
from costlake.anomalies.mix import calm_days, judgeable
from costlake.anomalies.mix import screen as mix_screen
from costlake.anomalies.rows import row_median, small_median
from costlake.anomalies.screen import (
    _candidates,
    _history,
    _weekly_spread,
    candidates,
    noisy_days,
    weekly_spread,
)

P = Params(window=28, min_history=14)
REGIONS = ("us-east-1", "eu-west-1", "ap-south-1")


def _series(seed: int, kind: str) -> ServiceSeries:
    """One synthetic (account, service) series with a region split, of a given character."""
    rng = np.random.default_rng(seed)
    days = int(rng.integers(30, 90))
    if kind == "heavy":  # a few lognormal line items a day: every day a surprise
        cents = [int(sum(np.exp(rng.normal(0, 2, rng.poisson(1.8))) * 100)) for _ in range(days)]
    elif kind == "intermittent":
        cents = [int(rng.uniform(500, 9000)) if rng.random() < 0.4 else 0 for _ in range(days)]
    elif kind == "sparse":  # one or two lognormal line items (median $1, log sigma 2) now and then
        items = (
            np.exp(rng.normal(0, 2, rng.integers(1, 3))) if rng.random() < 0.35 else [] for _ in range(days)
        )
        cents = [int(sum(x) * 100) for x in items]
    else:  # steady, weekly, with a change somewhere
        level = rng.uniform(50, 5000)
        weekly = [0.7 if i % 7 in (5, 6) else 1.0 for i in range(days)]
        cents = [int(level * rng.normal(1, 0.08) * w * 100) for w in weekly]
        at = int(rng.integers(15, days))
        factor = rng.choice([0.0, 0.3, 2.0, 3.5])
        until = at + int(rng.choice([1, 2, days]))
        cents[at:until] = [int(c * factor) for c in cents[at:until]]
    total = [D(c) / 100 for c in cents]
    home, other = rng.choice(len(REGIONS), 2, replace=False)
    move = int(rng.integers(10, days)) if rng.random() < 0.5 else days
    split = rng.uniform(0.6, 0.9) if kind != "heavy" else None
    parts: dict[tuple[str, str], list[D]] = {("region", r): [D(0)] * days for r in REGIONS}
    for i, value in enumerate(total):
        share = D(str(round(split if split is not None else rng.random(), 2)))
        first = (value * share).quantize(D("0.01"))
        where = REGIONS[other] if i >= move else REGIONS[home]
        parts[("region", where)][i] += first
        parts[("region", REGIONS[(home + other + 1) % 3 if home != other else 0])][i] += value - first
    parts[("pricing_model", "on_demand")] = list(total)
    parts[("charge_category", "usage")] = list(total)
    return ServiceSeries("111111111111", f"svc{seed}", dt.date(2025, 1, 1), total, parts)


def _frame(series: list[ServiceSeries]) -> Frame:
    """The in-memory frame of equal-start series, as `frame.load_frame` / `load_parts` build it."""
    n = max(len(s.total) for s in series)
    totals = np.full((len(series), n), np.nan)
    for row, s in enumerate(series):
        totals[row, : len(s.total)] = [float(v) for v in s.total]
    parts = {}
    for dim in SHIFT_DIMENSIONS:
        owner, values = [], []
        for row, s in enumerate(series):
            for (d, _), xs in sorted(s.parts.items()):
                if d == dim:
                    owner.append(row)
                    values.append([float(v) for v in xs] + [np.nan] * (n - len(xs)))
        parts[dim] = Parts(np.array(owner), np.array(values))
    first = np.zeros(len(series), dtype=np.int64)
    end = np.array([len(s.total) for s in series])
    keys = [(s.account_id, s.service_name) for s in series]
    return Frame(keys, series[0].start, first, end, first.copy(), totals, parts, pa.table({}))


kinds = st.sampled_from(["heavy", "intermittent", "steady", "sparse"])


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10**6), kinds, st.sampled_from(["weekday", "trailing"]))
def test_the_walk_screen_never_changes_a_finding(seed: int, kind: str, baseline: str) -> None:
    params = Params(window=28, min_history=14, baseline=baseline)
    values = _series(seed, kind).total
    fast = detect_baseline(values, params)
    exact = detect_baseline(values, params, screen=False)
    assert [(f.index, f.kind, f.duration, f.actual, f.band) for f in fast.findings] == [
        (f.index, f.kind, f.duration, f.actual, f.band) for f in exact.findings
    ]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**6), kinds), min_size=1, max_size=6))
def test_the_batch_screens_let_through_every_series_with_a_finding(draws: list[tuple[int, str]]) -> None:
    series = [_series(seed, kind) for seed, kind in draws]
    frame = _frame(series)
    opens, expected, _ = candidates(frame.totals, frame.first, np.ones(len(series), dtype=bool), P)
    shifted = opens.any(axis=1)
    calm = calm_days(expected, frame.totals, frame.first, shifted, P.window)
    moved = mix_screen(frame, calm, P, frame.begin)
    for row, s in enumerate(series):
        reference = analyse(s, P)  # every day judged exactly
        totals = [f for f in reference if f.kind != "mix_shift"]
        if totals:
            assert opens[row, totals[0].index], "a finding the totals screen held back"
        days = np.flatnonzero(~np.isnan(moved[row]))
        if any(f.kind == "mix_shift" for f in reference):
            assert days.size, "a mix shift the mix screen held back"
        # As the job does: the screen's days, less those the analysed total rules out.
        screened_days = dict(zip(days.tolist(), moved[row, days].tolist(), strict=True))
        kept = judgeable(s.total, detect(s.total, P), screened_days, P)
        assert kept <= set(days.tolist())
        for mix_days in (set(days.tolist()), kept):
            screened = analyse(s, P, mix_days=mix_days)
            assert [(f.index, f.kind, f.duration, f.score) for f in screened] == [
                (f.index, f.kind, f.duration, f.score) for f in reference
            ]


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10**6), kinds, st.integers(0, 20))
def test_a_day_the_screen_calls_noisy_is_noisy(seed: int, kind: str, start: int) -> None:
    """The counting screen of the noise guard never calls a day noisy that the exact rule does not
    (it may miss some: those days are screened further), and misses few on heavy-tailed series."""
    values = _series(seed, kind).total
    floats = np.array([[float(v) for v in values]])
    fast = noisy_days(floats, np.array([start]), P.window)[0]
    exact = [False] * len(values)
    for t in range(start + 1, len(values)):
        band = Band(D(0), D(0), D(0), D(0), (), min(P.window, t - start))
        exact[t] = noisy(values, t, band)
    assert not any(f and not e for f, e in zip(fast, exact, strict=True)), "called noisy, but is not"
    if kind == "heavy":
        assert sum(fast) >= 0.8 * sum(exact)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10**6), kinds, st.sampled_from([D("0.8"), D("2"), D("3")]))
def test_the_noise_guard_decides_in_floats_as_in_exact_decimals(seed: int, kind: str, z: D) -> None:
    """`ordinary` and `noisy` take floats where they are clearly on one side: every day of every
    band, they say what exact decimals say."""
    values = _series(seed, kind).total
    for t in range(1, len(values)):
        for expected in (D(0), values[t - 1], values[t] * D("1.5")):
            band = Band(expected, D(0), D(0), D(0), (), min(P.window, t))
            assert ordinary(values, t, band, z) == exact_ordinary(values, t, band, z)
            spread = noise_spread(values, t, band)
            assert noisy(values, t, band) == (spread is not None and spread >= NOISY_SPREAD)


def test_the_median_of_three_is_selected_as_a_sort_would() -> None:
    rng = np.random.default_rng(7)
    values = rng.lognormal(0, 2, (20000, 3)) * rng.choice([1, 1e9], (20000, 1))
    values[rng.random(values.shape) < 0.3] = np.nan
    assert np.array_equal(small_median(values), row_median(values), equal_nan=True)


def test_heavy_tailed_noise_is_not_an_anomaly() -> None:
    """A service billed in one to three lognormal line items a day (sigma 2: a day 50 times the
    median is routine) raises fewer than one report per thousand days."""
    days = reports = 0
    for seed in range(150):
        values = _series(seed, "heavy").total
        days += len(values)
        reports += len(detect(values, P).findings)
    assert reports * 1000 < days, f"{reports} reports over {days} days"


def test_a_steady_series_is_never_guarded() -> None:
    """On a steady service the guard stays off: a x1.7 day is a spike, a x0.3 day a dip."""
    values = [D(1000) + D((i * 37) % 41) for i in range(50)]
    values[40] = D(1700)
    values[45] = D(300)
    found = detect(values, P).findings
    assert [(f.index, f.kind) for f in found] == [(40, "spike"), (45, "dip")]


def test_weekday_residuals_computed_once_per_day_equal_those_of_every_window() -> None:
    """The spread of the weekday band from residuals computed once per day and position is, bit for
    bit, the spread from each judged day's own window, whatever the window, starts and gaps."""
    rng = np.random.default_rng(11)
    values = rng.lognormal(3, 1.5, (40, 70))
    values[rng.random(values.shape) < 0.25] = np.nan
    values[rng.random(values.shape) < 0.1] = 0.0
    starts = rng.integers(-3, 30, 40)
    rows, cols = (a.ravel() for a in np.meshgrid(np.arange(40), np.arange(70), indexing="ij"))
    for window in (7, 14, 21, 28, 35, 30, 56):
        history = _history(values, starts, rows, cols, window)
        direct = _weekly_spread(history, np.arange(1, window + 1) % 7, window)
        assert np.array_equal(weekly_spread(values, starts, rows, cols, window), direct, equal_nan=True), (
            window
        )


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**6), kinds), min_size=1, max_size=8), st.integers(0, 10**6))
def test_rows_resuming_late_are_screened_on_their_weeks_only_with_the_same_result(
    draws: list[tuple[int, str]], seed: int
) -> None:
    """`candidates` computes groups of rows on the columns from a window before their resume day;
    every output equals the computation on the whole calendar, bit for bit, whatever the resume
    days, levels and windows (a resume day past the last day included)."""
    rng = np.random.default_rng(seed)
    frame = _frame([_series(s, kind) for s, kind in draws])
    rows, n = frame.totals.shape
    begin = rng.integers(0, n + 3, rows)
    starts = np.minimum(rng.integers(0, n, rows), begin)
    fresh = starts == 0
    for params in (P, Params(window=14, min_history=7), Params(window=30, min_history=14, shift_days=2)):
        got = candidates(frame.totals, starts, fresh, params, begin)
        want = _candidates(frame.totals, starts, fresh, params, begin)
        assert all(np.array_equal(g, w, equal_nan=True) for g, w in zip(got, want, strict=True))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**6), kinds), min_size=1, max_size=8), st.integers(0, 10**6))
def test_days_before_the_judged_one_get_their_expected_cost_and_nothing_else(
    draws: list[tuple[int, str]], seed: int
) -> None:
    """With `judge` (the day changes of the total are derived again from, at or after the resume
    day), the expected costs are those of the whole screen from the resume day, and the days
    from `judge` on are judged exactly as by the whole screen; the days before it are not."""
    rng = np.random.default_rng(seed)
    frame = _frame([_series(s, kind) for s, kind in draws])
    rows, n = frame.totals.shape
    begin = rng.integers(0, n, rows)
    judge = begin + rng.integers(0, 20, rows)
    starts = np.minimum(rng.integers(0, n, rows), begin)
    fresh = starts == 0
    later = np.arange(n)[None, :] >= judge[:, None]
    for params in (P, Params(window=14, min_history=7)):
        opens, expected, outside = candidates(frame.totals, starts, fresh, params, begin, judge)
        all_opens, all_expected, all_outside = candidates(frame.totals, starts, fresh, params, begin)
        assert np.array_equal(expected, all_expected, equal_nan=True)
        assert np.array_equal(opens, all_opens & later) and np.array_equal(outside, all_outside & later)


def test_the_screen_clears_the_usual_billing_of_services_billed_now_and_then() -> None:
    """Series billed on a third of their days in heavy-tailed line items: the exact rule calls
    their billed days usual billing, and so does the screen, which leaves few of them to the exact
    analysis (each left would cost a walk in decimals)."""
    series = [_series(seed, "sparse") for seed in range(60)]
    frame = _frame(series)
    opens, _, outside = candidates(frame.totals, frame.first, np.ones(len(series), dtype=bool), P)
    assert outside.any(axis=1).sum() >= 30  # series with days the dollar band alone would judge
    found = sum(1 for s in series if detect(s.total, P).findings)
    assert found <= opens.any(axis=1).sum() <= found + 3 <= 15


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**6), kinds), min_size=1, max_size=8), st.integers(0, 10**6))
def test_calm_days_of_rows_resuming_late_are_those_of_the_whole_calendar(
    draws: list[tuple[int, str]], seed: int
) -> None:
    """`calm_days` with each row's first judged column looks only at the weeks from a window before
    it: on every judged day the same answer as on the whole calendar."""
    rng = np.random.default_rng(seed)
    frame = _frame([_series(s, kind) for s, kind in draws])
    rows, n = frame.totals.shape
    begin = rng.integers(0, n + 3, rows)
    starts = np.minimum(rng.integers(0, n, rows), begin)
    shifted = rng.random(rows) < 0.3
    for window in (28, 14, 30):
        # half the rows judged from a whole number of weeks after a window: their first read day
        # is the first column of their group
        begin = np.where(rng.random(rows) < 0.5, window + 7 * rng.integers(0, 6, rows), begin)
        starts = np.minimum(starts, begin)
        judged = np.arange(n)[None, :] >= begin[:, None]
        _, expected, _ = candidates(frame.totals, starts, starts == 0, Params(window=window), begin)
        got = calm_days(expected, frame.totals, starts, shifted, window, begin)
        want = calm_days(expected, frame.totals, starts, shifted, window)
        assert np.array_equal(got & judged, want & judged)


def test_the_screen_keeps_a_cent_above_the_band_of_costs_of_a_quadrillion() -> None:
    """At $1e15 a float's last place is $0.125: the screen's margins grow with the costs, so a day
    a few cents outside its band, which the exact rule reports, is never cleared."""
    for big, extra, floor in (("1e15", "0.05", "0"), ("1e10", "30.000005", "30")):
        params = Params(min_impact=D(floor), min_pct=D(0))
        values = [D(big) if i % 3 == 0 else D(0) for i in range(90)]
        values[87] = D(big) + D(extra)
        assert [f.index for f in detect_baseline(values, params, screen=False).findings] == [87]
        totals = np.array([[float(v) for v in values]])
        opens, _, _ = candidates(totals, np.array([0]), np.array([True]), params)
        assert opens[0, 87], (big, extra)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**6), kinds), min_size=1, max_size=8), st.integers(0, 10**6))
def test_the_mix_screen_of_rows_resuming_late_is_that_of_the_whole_calendar(
    draws: list[tuple[int, str]], seed: int
) -> None:
    """The mix screen looks at each group of rows on the weeks from a window before their first
    judged day: the days it finds are those of the whole calendar, whatever the resume days."""
    from costlake.anomalies.mix import _screen as whole_calendar

    rng = np.random.default_rng(seed)
    frame = _frame([_series(s, kind) for s, kind in draws])
    rows, n = frame.totals.shape
    weeks = P.window + 7 * rng.integers(0, 6, rows)
    begin = np.where(rng.random(rows) < 0.5, weeks, rng.integers(0, n, rows))
    starts = np.zeros(rows, dtype=np.int64)
    opens, expected, _ = candidates(frame.totals, starts, np.ones(rows, dtype=bool), P, begin)
    calm = calm_days(expected, frame.totals, starts, opens.any(axis=1), P.window, begin)
    calm[np.arange(n)[None, :] < begin[:, None]] = False
    got = mix_screen(frame, calm, P, begin)
    whole = whole_calendar(frame.totals, frame.parts, frame.end, calm, P, begin)
    assert np.array_equal(np.isnan(got), np.isnan(whole))  # the same days, moves equal but for rounding
    assert np.allclose(got, whole, rtol=1e-9, atol=1e-9, equal_nan=True)
    assert np.isnan(got[np.arange(n)[None, :] < begin[:, None]]).all()


@pytest.mark.filterwarnings("error")
@settings(max_examples=20, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**6), kinds), min_size=2, max_size=9), st.integers(0, 10**6))
def test_screens_in_chunks_on_threads_give_the_numbers_of_one_pass(
    draws: list[tuple[int, str]], seed: int
) -> None:
    """The total and mix screens split each group of rows into chunks computed on threads
    (chunks.py): the same numbers, bit for bit, as one pass over every row; and no floating-point
    warning escapes a thread (numpy.errstate holds per thread, warnings filters do not)."""
    rng = np.random.default_rng(seed)
    frame = _frame([_series(s, kind) for s, kind in draws])
    rows, n = frame.totals.shape
    begin = np.where(rng.random(rows) < 0.5, P.window + 7 * rng.integers(0, 4, rows), 0)
    starts = np.minimum(rng.integers(0, n, rows), begin)
    fresh = starts == 0

    def screens(chunk_rows: int, threads: int) -> list[np.ndarray]:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(chunks, "CHUNK_ROWS", chunk_rows)
            opens, expected, outside = candidates(frame.totals, starts, fresh, P, begin, threads=threads)
            calm = calm_days(expected, frame.totals, starts, opens.any(axis=1), P.window, begin)
            calm[np.arange(n)[None, :] < begin[:, None]] = False
            return [opens, expected, outside, mix_screen(frame, calm, P, begin, threads)]

    whole, split = screens(10**6, 1), screens(2, 3)
    assert all(np.array_equal(w, s, equal_nan=True) for w, s in zip(whole, split, strict=True))
    assert chunks.chunked([(0, np.arange(rows))], 2)[-1][1][-1] == rows - 1  # every row is in a chunk
