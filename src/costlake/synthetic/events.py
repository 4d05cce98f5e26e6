"""The event generator: from accounts to billed line items and the rows that deliver them.

Each step draws from the caller's random stream in a fixed order, so the same seed gives the same
events; reordering the calls (or the draws inside one) changes every generated file.
Costs are int64 units of 1e-10 USD from the moment they are sampled.
"""

from __future__ import annotations

from datetime import date

import numpy as np

from costlake.synthetic.catalogue import COMMITMENT_SERVICES, PRICING_MODELS, REGIONS, SERVICES, Accounts

UNITS_PER_USD = 10**10  # cost precision: 10 decimal places
REDELIVERY_RATE = 0.03
CREDIT_RATE = 0.01
TAX_RATE = 0.002
_HOUR = 3600


def daily_cost_targets(rng: np.random.Generator, acc: Accounts, days: int, start: date) -> np.ndarray:
    """Expected USD per (day, account, service). The one place that shapes the time series:
    injected anomalies (spikes, step changes) can later be multiplied into this array."""
    n_acc, n_svc = acc.mix.shape
    t = np.arange(days)
    weekend = ((start.weekday() + t) % 7 >= 5)[:, None]
    daily = acc.level * np.where(weekend, acc.weekend, 1.0) * (1.0 + acc.growth) ** t[:, None]
    daily = daily * rng.lognormal(0.0, 0.05, (days, n_acc))  # account-level day noise
    return daily[:, :, None] * acc.mix[None] * rng.lognormal(0.0, 0.10, (days, n_acc, n_svc))


def sample_events(rng: np.random.Generator, target: np.ndarray, events: int) -> dict[str, np.ndarray]:
    """Split the cost targets into `events` line items (day, account, service, units)."""
    n_svc = target.shape[2]
    day_total = target.sum(axis=2).ravel()
    # A service in use bills every day, as in a real export: when there are enough events, every
    # cell worth a dollar first gets one line item, and the rest are allocated as below.
    billed = target.ravel() >= 1.0
    base = billed.astype(np.int64) if billed.sum() <= events // 2 else np.zeros(target.size, np.int64)
    # Sub-linear allocations: small accounts still get line items every day, and
    # big services get more (and larger) line items than small ones.
    per_day = rng.multinomial(events - int(base.sum()), day_total**0.6 / (day_total**0.6).sum())
    svc_w = target.reshape(-1, n_svc) ** 0.85
    counts = rng.multinomial(per_day, svc_w / svc_w.sum(axis=1, keepdims=True)).ravel() + base
    cell = np.repeat(np.arange(counts.size), counts)  # day-major, so ids follow usage time
    share = rng.lognormal(0.0, 1.2, events)
    usd = target.ravel()[cell] * share / np.bincount(cell, share, counts.size)[cell]
    # Rescale so each account-day bills its modelled total even when rare services drew no rows.
    acct_day = cell // n_svc
    usd *= day_total[acct_day] / np.bincount(acct_day, usd, day_total.size)[acct_day]
    units = np.maximum(np.rint(usd * UNITS_PER_USD), 1).astype(np.int64)
    day, account, service = np.unravel_index(cell, target.shape)
    return {"day": day, "account": account, "service": service, "units": units}


def decorate(rng: np.random.Generator, acc: Accounts, ev: dict[str, np.ndarray]) -> None:
    """Region and pricing model per event."""
    n, account = ev["units"].size, ev["account"]
    # Mostly the account's home region, some in a secondary one, a little anywhere.
    u = rng.random(n)
    ev["region"] = np.where(
        u < 0.75,
        acc.home_region[account],
        np.where(u < 0.95, acc.alt_region[account], rng.integers(0, len(REGIONS), n)),
    )
    pricing = (rng.random(n)[:, None] >= acc.pricing_cum[account]).sum(axis=1)
    commit = np.array([s in COMMITMENT_SERVICES for s in SERVICES])
    ev["pricing"] = np.where(commit[ev["service"]], np.minimum(pricing, len(PRICING_MODELS) - 1), 0)


def add_credits_and_tax(rng: np.random.Generator, ev: dict[str, np.ndarray], n_credit: int) -> None:
    """Mark a few events as tax, and add credit line items: each a new event that gives back
    5-25% of one usage event's cost, in its day, account, service, region and pricing model."""
    n = ev["units"].size
    ev["category"] = np.zeros(n, np.int64)
    special = rng.permutation(n)
    n_tax = round(n * TAX_RATE)
    ev["category"][special[n_credit : n_credit + n_tax]] = 2
    source = np.sort(special[:n_credit])
    share = rng.uniform(0.05, 0.25, source.size)
    credit = -np.maximum(np.rint(ev["units"][source] * share), 1).astype(np.int64)
    for key in ("day", "account", "service", "region", "pricing"):
        ev[key] = np.concatenate([ev[key], ev[key][source]])
    ev["units"] = np.concatenate([ev["units"], credit])
    ev["category"] = np.concatenate([ev["category"], np.ones(source.size, np.int64)])


def deliveries(
    rng: np.random.Generator, ev: dict[str, np.ndarray], days: int, batches: int
) -> dict[str, np.ndarray]:
    """Output rows (originals plus re-deliveries), sorted by batch then ingestion time."""
    n = ev["units"].size
    # Batch k delivers its own consecutive slice of usage days.
    sizes = [len(s) for s in np.array_split(np.arange(days), batches)]
    batch = np.repeat(np.arange(batches), sizes)[ev["day"]]
    # Originals land 2-26 h after the usage day ends, leaving room for a correction by 30 h.
    offset = rng.integers(2 * _HOUR, 26 * _HOUR, n)
    # Re-deliveries: same event, corrected cost, later timestamp, next batch (same if last).
    redo = np.sort(rng.choice(n, round(n * REDELIVERY_RATE), replace=False))
    old = ev["units"][redo]
    fixed = np.rint(
        old * (1.0 + rng.choice([-1.0, 1.0], redo.size) * rng.uniform(0.02, 0.2, redo.size))
    ).astype(np.int64)
    fixed = np.where(fixed == old, old + np.sign(old), fixed)
    late = offset[redo] + _HOUR + rng.integers(0, 30 * _HOUR - offset[redo] - _HOUR + 1)
    rows = {
        "src": np.concatenate([np.arange(n), redo]),  # source event of every row
        "units": np.concatenate([ev["units"], fixed]),
        "offset": np.concatenate([offset, late]),
        "batch": np.concatenate([batch, np.minimum(batch[redo] + 1, batches - 1)]),
    }
    # Within a file rows are in ingestion order; the event id breaks ties deterministically.
    order = np.lexsort((rows["src"], rows["offset"] + ev["day"][rows["src"]] * 86_400, rows["batch"]))
    return {k: v[order] for k, v in rows.items()}
