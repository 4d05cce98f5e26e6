"""Mix shifts: spend that moved between the regions (or pricing models) of a service while its
total stayed inside its band, judged in dollars against the series' own day-to-day reshuffling.

For a day t and a dimension, every value v has a gain g_v = (its median over the `mix_shift_days`
days from t) - (its mean over the window before t): a value gains only when it stayed up on most
of those days (one large line item does not make a shift), and loses only when it stayed below its
usual level. The dollars that *moved between values* are (sum |g_v| - |sum g_v|) / 2: what some
values gained and others lost, net of any change of the total. The same quantity from each billed day to
the next billed day (days with no net charges skipped: they move nothing between values), over the
window before t, is the series' own history of moves; with at least `MOVES_MIN` of them, a day
qualifies when its moved dollars exceed the median of that history by `z` robust standard
deviations of a median of `mix_shift_days` such moves (`_scale` / sqrt of the span; never below a
cent, so no score comes from a zero scale) and the floors of the total's band (`anomaly_min_impact_usd`,
`anomaly_min_pct` of the expected total). A mix that is noisy every day has large daily moves and
never qualifies; a lasting move of a real share of a stable mix does, while the total stays inside
its band. Qualifying days less than `mix_shift_days` apart are one shift, reported at its first
day: the day that best splits each day's own displacement from the mix before into a before and an
after.

`screen` evaluates all series of a frame at once in floats; `mix_shifts` decides one series in
exact decimals, and only the series the screen could not clear are decided.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from decimal import Decimal

import numpy as np

from costlake.anomalies.bands import (
    CENT,
    CTX,
    SCORE_PLACES,
    Finding,
    Params,
    median,
    tail_scale,
)
from costlake.anomalies.bands import noisy as noisy_total
from costlake.anomalies.chunks import screened
from costlake.anomalies.detect import SeriesResult
from costlake.anomalies.frame import SHIFT_DIMENSIONS, Frame, Parts
from costlake.anomalies.rows import row_median, row_tail_scale
from costlake.anomalies.screen import noisy_days, resume_groups

BLOCK_ROWS = 2048  # value rows per block of `_moves` (its largest temporary: 2048 x days x span floats)
MOVES_MIN = 5  # daily moves between billed days a series' mix needs before a shift can be judged


def calm_days(
    expected: np.ndarray,
    values: np.ndarray,
    starts: np.ndarray,
    shifted: np.ndarray,
    window: int,
    begin: np.ndarray | None = None,
) -> np.ndarray:
    """(S, n) the days on which a mix shift may be judged: with a band, and not surely noisy
    (`screen.noisy_days` of the frame's `values` with the levels from `starts`). Where the screen
    saw no possible change of the total (`shifted` False), the exact analysis keeps the level the
    screen assumed, so its history is the screen's and noisy days are left out here already;
    elsewhere the exact analysis decides. With `begin` (each row's first judged column), only
    days from there on are looked at (earlier ones have no band: `expected` is NaN there), each on
    the weeks it reads."""
    quiet = np.flatnonzero(~shifted)
    begin = np.zeros(len(values), dtype=np.int64) if begin is None else begin
    noisy = np.zeros(values.shape, dtype=bool)
    for lo, group in resume_groups(begin[quiet], window, values.shape[1]):
        rows = quiet[group]
        noisy[rows, lo:] = noisy_days(values[rows, lo:], starts[rows] - lo, window)
    return ~np.isnan(expected) & ~noisy


def screen(
    frame: Frame, calm: np.ndarray, params: Params, begin: np.ndarray, threads: int | None = None
) -> np.ndarray:
    """(S, n) the days of each series of the frame (from its column `begin` on) that may qualify,
    among its `calm_days` (only the parts of series with such days are looked at): the largest of
    their dimensions' moved dollars there (an upper bound, `_moves`), NaN on every other day (see
    `judgeable`). A day reads the
    window before it and the span after it (a move's first day further back is left out), so rows
    are screened in groups on the weeks from a window before their first judged day: on a daily
    delivery, two weeks of most series instead of the whole calendar. Groups are screened in chunks
    on `threads` threads (chunks.py)."""

    def group(lo: int, rows: np.ndarray) -> np.ndarray:
        parts = {}
        for dim, p in frame.parts.items():
            mine = np.isin(p.owner, rows)
            parts[dim] = Parts(np.searchsorted(rows, p.owner[mine]), p.values[mine, lo:])
        end = frame.end[rows] - lo
        return _screen(frame.totals[rows, lo:], parts, end, calm[rows, lo:], params, begin[rows] - lo)

    found = np.full(frame.totals.shape, np.nan)
    for lo, rows, got in screened(group, resume_groups(begin, params.window, frame.totals.shape[1]), threads):
        found[rows, lo:] = got
    return found


def _screen(
    totals: np.ndarray,
    parts: dict[str, Parts],
    end: np.ndarray,
    calm: np.ndarray,
    params: Params,
    begin: np.ndarray,
) -> np.ndarray:
    """`screen` of a frame's `totals`, `parts` and `end`."""
    found = np.full(totals.shape, np.nan)
    judged = np.asarray(calm.any(axis=1))
    last = _last_billed(totals)
    floor = float(params.min_impact)  # the % floor depends on the exact band (its level may shift)
    for dim in SHIFT_DIMENSIONS:
        dim_parts = parts.get(dim)
        if dim_parts is None or dim_parts.owner.size == 0:
            continue
        mine = judged[dim_parts.owner]
        if not mine.any():
            continue
        with np.errstate(all="ignore"):
            moved, daily = _moves(dim_parts.values[mine], dim_parts.owner[mine], last, params)
            n = moved.shape[1]
            days = np.arange(n)[None, :]
            lasted = (days + params.mix_shift_days <= end[:, None]) & (days >= begin[:, None])
            maybe = (moved > floor * (1 - 1e-9) - 1e-6) & lasted & calm
            rows, cols = np.nonzero(maybe)
            moves = _history(daily, rows, cols, params.window)
            since = _history(last.astype(np.float64), rows, cols, params.window)  # each move's first day
            moves[~(since >= cols[:, None] - params.window)] = np.nan  # from inside the window only
            centre = row_median(moves)
            scale = _float_scale(np.abs(moves - centre[:, None]))
            bar = centre + float(params.z) * scale / np.sqrt(params.mix_shift_days)
            known = (~np.isnan(moves)).sum(axis=1) >= MOVES_MIN
            hit = known & (moved[rows, cols] > bar * (1 - 1e-9) - 1e-6)
        rows, cols = rows[hit], cols[hit]
        found[rows, cols] = np.fmax(found[rows, cols], moved[rows, cols])
    return found


def _last_billed(totals: np.ndarray) -> np.ndarray:
    """(S, n) the series' last billed day before each day where that day is billed, else -1."""
    s, n = totals.shape
    billed = totals > 0
    latest = np.maximum.accumulate(np.where(billed, np.arange(n)[None, :], -1), axis=1)
    out = np.full((s, n), -1, dtype=np.int64)
    out[:, 1:] = np.where(billed[:, 1:], latest[:, :-1], -1)
    return out


def _moves(
    values: np.ndarray, owner: np.ndarray, last: np.ndarray, params: Params, block: int = BLOCK_ROWS
) -> tuple[np.ndarray, np.ndarray]:
    """(moved, daily) per series row and day, in floats: the moved dollars of the means around day
    t (raised by what rounding may have cost them: an upper bound), and the moved dollars from the
    series' last billed day before t (`_last_billed`) to t. Computed in blocks of whole series,
    `block` value rows or so each: a block's temporaries (the median's windows are
    `mix_shift_days` times its size) stay small enough to be reused instead of mapped afresh,
    which on a lake of many sparse series cost more than the arithmetic."""
    moved = np.full(last.shape, np.nan)
    daily = np.full(last.shape, np.nan)
    cuts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])  # each series' first row
    lo = 0
    while lo < owner.size:
        hi = int(cuts[np.searchsorted(cuts, lo + block)]) if lo + block < cuts[-1] else owner.size
        _block_moves(values[lo:hi], owner[lo:hi], last, params, moved, daily)
        lo = hi
    return moved, daily


def _block_moves(
    values: np.ndarray,
    owner: np.ndarray,
    last: np.ndarray,
    params: Params,
    moved: np.ndarray,
    daily: np.ndarray,
) -> None:
    """`_moves` of the value rows of whole series, into their rows of `moved` and `daily`."""
    span, window = params.mix_shift_days, params.window
    v, n = values.shape
    inside = ~np.isnan(values)
    x = np.where(inside, values, 0.0)
    sums = np.concatenate([np.zeros((v, 1)), np.cumsum(x, axis=1)], axis=1)
    counts = np.concatenate([np.zeros((v, 1)), np.cumsum(inside, axis=1)], axis=1)
    t = np.arange(n)
    ahead = np.minimum(t + span, n)
    back = np.maximum(t - window, 0)
    after = np.full((v, n), np.nan)
    if n >= span:  # the median of the `span` days from t (only used where all of them are inside)
        windows = np.lib.stride_tricks.sliding_window_view(x, span, axis=1)
        middle = sorted({(span - 1) // 2, span // 2})
        parted = np.partition(windows, middle, axis=-1)
        after[:, : n - span + 1] = parted[..., middle].mean(axis=-1)
    counted = counts[:, t] - counts[:, back]
    before = (sums[:, t] - sums[:, back]) / counted
    full = (counts[:, ahead] - counts[:, t] == span) & (counted >= 1)
    _between(np.where(full, after - before, np.nan), owner, moved)
    # What the floats may be off by: a running sum is off by up to n units in the last place of the
    # sum of |values| so far, which a large cost (or a charge and a credit that cancel) makes
    # dollars; each value's gain carries that error, and the moved dollars at most their sum (and
    # that sum's own rounding, up to a unit of each term per value). `moved` is raised by it, so that every
    # comparison with it leans towards "may qualify".
    eps = float(np.finfo(np.float64).eps)
    magnitude = np.concatenate([np.zeros((v, 1)), np.cumsum(np.abs(x), axis=1)], axis=1)[:, t]
    values_of = np.bincount(owner - owner[0])[owner - owner[0], None]  # each row's series' count
    error = 4 * eps * (n + values_of) * (magnitude / np.maximum(counted, 1) + np.abs(after) + np.abs(before))
    rows, bound = _per_series(np.where(full, error, np.nan), owner)
    moved[rows] += bound
    before_day = last[owner]
    earlier = np.take_along_axis(values, np.maximum(before_day, 0), axis=1)
    _between(
        np.where((before_day >= 0) & inside & ~np.isnan(earlier), values - earlier, np.nan), owner, daily
    )


def _per_series(x: np.ndarray, owner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(series rows, the sum of `x` over each one's values), for value rows owned by ascending
    series rows."""
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    return owner[starts], np.add.reduceat(x, starts, axis=0)


def _between(change: np.ndarray, owner: np.ndarray, out: np.ndarray) -> None:
    """(sum |c| - |sum c|) / 2 over the values of each series, into its row of `out`: the dollars
    that moved between them."""
    rows, gross = _per_series(np.abs(change), owner)
    out[rows] = (gross - np.abs(_per_series(change, owner)[1])) / 2


def _history(daily: np.ndarray, rows: np.ndarray, days: np.ndarray, window: int) -> np.ndarray:
    """The daily moves of the window before each (row, day): days t - window + 1 .. t - 1."""
    lag = np.arange(1, window)[None, :]
    index = days[:, None] - lag
    got = daily[rows[:, None], np.clip(index, 0, None)]
    return np.where(index >= 1, got, np.nan)


def mix_shifts(
    totals: Sequence[Decimal],
    parts: Mapping[tuple[str, str], Sequence[Decimal]],
    total: SeriesResult,
    busy: set[int],
    params: Params,
    begin: int = 0,
    maybe: Collection[int] | None = None,
) -> list[Finding]:
    """The mix shifts of one series from day `begin` on, in exact decimals (one per qualifying run,
    at its day of the largest move; days inside a change of the total are not judged). `maybe`:
    the only days that can qualify, from the float screen (None: judge every day)."""
    span, days = params.mix_shift_days, total.days
    best: dict[int, tuple[Decimal, Finding]] = {}
    for dim in SHIFT_DIMENSIONS:
        xs = [list(v) for (d, _), v in sorted(parts.items()) if d == dim]
        if len(xs) < 2:
            continue
        run: list[tuple[int, Decimal, Decimal]] = []  # (day, moved, score) of the current run
        for t in range(max(begin, 1), days - span + 1):
            # The total must stay within its band over the days judged, not only on day t.
            calm = not busy.intersection(range(t, t + span))
            hit = calm and (maybe is None or t in maybe) and _qualifies(xs, totals, t, total, params)
            if hit:
                run.append((t, *hit))
            elif run and t - run[-1][0] >= span:  # a gap shorter than a span does not end a shift
                _close(run, xs, totals, total, best, params, _floor(run, busy, begin))
                run = []
        if run:
            _close(run, xs, totals, total, best, params, _floor(run, busy, begin))
    return [best[t][1] for t in sorted(best)]


def judgeable(
    totals: Sequence[Decimal], total: SeriesResult, moved: Mapping[int, float], params: Params
) -> set[int]:
    """The days of `moved` (from `screen`: each day's largest moved dollars, in floats, raised by
    their possible rounding error) that
    `mix_shifts` may still find qualifying once the total is analysed: those calm beside its
    changes, with a band, enough daily moves before them, a move above the band's percent floor
    (which the screen could not check: the level may shift) and a total that is not noisy there.
    What `_qualifies` rejects without reading a part is rejected here already, so that parts are
    read only for the days left (on a correction, most candidates fall to the percent floor)."""
    span, window = params.mix_shift_days, params.window
    busy = {i for f in total.findings for i in range(f.index, f.index + f.duration)}
    kept = set()
    for t, dollars in moved.items():
        band = total.band(t)
        if band is None or busy.intersection(range(t, t + span)):
            continue
        floor = float(max(params.min_impact, params.min_pct * abs(band.expected) / 100))
        if not dollars > floor * (1 - 1e-9) - 1e-6:  # the screen's margin against the exact move
            continue
        billed = sum(1 for i in range(max(t - window, 0), t) if totals[i] > 0)
        if billed - 1 < MOVES_MIN or noisy_total(totals, t, band):
            continue
        kept.add(t)
    return kept


def _qualifies(
    xs: list[list[Decimal]], totals: Sequence[Decimal], t: int, total: SeriesResult, params: Params
) -> tuple[Decimal, Decimal] | None:
    """(moved, score) when day t qualifies, else None."""
    band = total.band(t)
    if band is None:
        return None
    span, window = params.mix_shift_days, params.window
    back = max(t - window, 0)
    gains = [median(x[t : t + span]) - _mean(x[back:t]) for x in xs]
    moved = _moved(gains)
    floor = max(params.min_impact, params.min_pct * abs(band.expected) / 100)
    if moved <= floor:
        return None
    billed = [i for i in range(max(t - window, 0), t) if totals[i] > 0]
    history = [_moved([x[b] - x[a] for x in xs]) for a, b in zip(billed, billed[1:], strict=False)]
    if len(history) < MOVES_MIN:
        return None
    centre = median(history)
    scale = _scale([abs(m - centre) for m in history])
    bar = centre + CTX.divide(params.z * scale, Decimal(span).sqrt(CTX))
    if moved <= bar or noisy_total(totals, t, band):
        return None
    return moved, CTX.divide(moved - centre, scale).quantize(SCORE_PLACES, context=CTX)


def _scale(deviations: Sequence[Decimal]) -> Decimal:
    """A robust standard deviation of a day's move from its |deviations| from their median
    (`bands.tail_scale`), never below a cent. Its 90th percentile sees a mix that flips now and then
    (a few line items a day, each in one region: most days move nothing, some move everything),
    which the median alone would call perfectly steady."""
    return max(tail_scale(deviations, CTX), CENT)


def _float_scale(deviations: np.ndarray) -> np.ndarray:
    """`_scale` of each row (NaN-padded; rows with no value give NaN)."""
    counted = (~np.isnan(deviations)).sum(axis=-1)
    return np.where(counted > 0, np.maximum(row_tail_scale(deviations, counted), 0.01), np.nan)


def _mean(values: Sequence[Decimal]) -> Decimal:
    return CTX.divide(sum(values, Decimal(0)), len(values))


def _moved(changes: Sequence[Decimal]) -> Decimal:
    return CTX.divide(sum((abs(c) for c in changes), Decimal(0)) - abs(sum(changes, Decimal(0))), 2)


def _floor(run: list[tuple[int, Decimal, Decimal]], busy: set[int], begin: int) -> int:
    """The earliest day a run's shift may be dated: a span before its first qualifying day, never
    inside or before a change of the total that ended just before it, nor before the analysis
    began."""
    start = run[0][0]
    last_busy = max((d for d in busy if d < start), default=-1)
    return max(last_busy + 1, begin, 1)


def _close(
    run: list[tuple[int, Decimal, Decimal]],
    xs: list[list[Decimal]],
    totals: Sequence[Decimal],
    total: SeriesResult,
    best: dict[int, tuple[Decimal, Finding]],
    params: Params,
    floor: int,
) -> None:
    """One finding for a run of qualifying days, at its first day: the day that best splits the
    days around the run into before and after (the largest difference of their mean
    displacement from the mix before the run), not before `floor`. Across dimensions the larger move
    on the same day wins."""
    span = params.mix_shift_days
    peak, moved, score = max(run, key=lambda r: (r[1], r[0]))
    lo, hi = max(run[0][0] - span, floor), peak + span  # days [lo, hi) around the move
    before = [_mean(x[max(lo - params.window, 0) : lo]) for x in xs]
    shown = [_moved([x[i] - b for x, b in zip(xs, before, strict=True)]) for i in range(lo, hi)]
    # Only a day with a band can carry the finding (the peak always has one): a shift is never
    # dropped for being dated too early, so every run leaves a finding an analysis can resume from.
    dates = [d for d in range(lo + 1, hi) if total.band(d) is not None]
    t = max(dates, key=lambda d: (_mean(shown[d - lo :]) - _mean(shown[: d - lo]), -d)) if dates else peak
    band = total.band(t)
    assert band is not None
    last = run[-1][0]
    duration = last + span - t
    ongoing = last == len(totals) - span
    finding = Finding(t, "mix_shift", "shift", totals[t], band, score, duration, ongoing)
    if t not in best or moved > best[t][0]:
        best[t] = (moved, finding)
