"""Synthetic billing data generator for costlake.

Writes the project's native billing CSV export as several batch files (in
ingestion order) plus a ``tenants.csv`` mapping accounts to tenants. The data
is shaped like a real AWS bill -- skewed service popularity, a stable service
mix per account, weekly seasonality, lognormal line items -- and deliberately
carries the defects the pipeline must cope with: re-delivered events with
corrected costs, credits, and inconsistently spelled service names. On request
it injects known anomalies, and series whose region mix is daily noise (which no
method should flag), and writes their ground truth (see injection.py).

Everything is vectorised with numpy/pyarrow and fully determined by ``seed``.
Costs are carried as int64 units of 1e-10 USD and formatted to text from those
integers, so the written values never pass through float.

The parts live beside this module: catalogue.py (services, regions, accounts),
events.py (line items and their deliveries), billing_files.py (the CSV files)
and injection.py (the known anomalies). This module runs them in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from numbers import Integral
from pathlib import Path

import numpy as np
import pyarrow as pa

from costlake.synthetic import injection
from costlake.synthetic.billing_files import HEADER, billing_table, write_batches, write_tenants
from costlake.synthetic.catalogue import REGIONS, SERVICES, Accounts, make_accounts
from costlake.synthetic.events import (
    CREDIT_RATE,
    add_credits_and_tax,
    daily_cost_targets,
    decorate,
    deliveries,
    sample_events,
)

# HEADER and SERVICES are part of this module's interface (tests and tools import them from here).
__all__ = ["HEADER", "SERVICES", "GenerateResult", "generate"]


@dataclass(frozen=True)
class GenerateResult:
    """What generate() wrote; `rows` and `credits` count rows over all billing files."""

    files: list[Path]
    tenants_file: Path
    rows: int
    redeliveries: int
    credits: int
    truth_file: Path | None = None  # anomalies_truth.csv when anomalies or noisy-mix series were injected
    anomalies: int = 0
    noisy_mix: int = 0


@dataclass(frozen=True)
class _Bill:
    """Everything generated before anything is written."""

    acc: Accounts
    rows: dict[str, np.ndarray]  # output rows: source event, units, offset, batch
    table: pa.Table  # the rows as native CSV columns
    injected: list[injection.Injected]
    noisy: list[injection.NoisyMix]


def _validate(
    events: int,
    days: int,
    start: date,
    tenants: int,
    accounts_per_tenant: int,
    batches: int,
    seed: int,
    anomalies: int,
    noisy_mix: int,
) -> None:
    minimums = {
        "events": (events, 1),
        "days": (days, 1),
        "tenants": (tenants, 1),
        "accounts_per_tenant": (accounts_per_tenant, 1),
        "batches": (batches, 1),
        "seed": (seed, 0),
    }
    for name, (value, minimum) in minimums.items():
        if not _is_int(value) or value < minimum:
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if batches > days:
        raise ValueError(f"batches ({batches}) cannot exceed days ({days}): each batch delivers >= 1 day")
    if not isinstance(start, date):
        raise ValueError(f"start must be a datetime.date, got {start!r}")
    for name, value in (("anomalies", anomalies), ("noisy_mix", noisy_mix)):
        if not _is_int(value) or value < 0:
            raise ValueError(f"{name} must be an integer >= 0, got {value!r}")


def _is_int(value: object) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def _simulate(
    seed: int,
    events: int,
    days: int,
    start: date,
    tenants: int,
    accounts_per_tenant: int,
    batches: int,
    anomalies: int,
    noisy_mix: int,
) -> _Bill:
    # The order of the steps is the order of the draws from `rng`: changing it changes every file.
    rng = np.random.default_rng(seed)
    acc = make_accounts(rng, tenants, accounts_per_tenant)
    target = daily_cost_targets(rng, acc, days, start)
    inject_rng = np.random.default_rng([seed, 1])  # own stream: no anomalies, same data as before
    injected = injection.plan(inject_rng, target, acc.home_region, acc.alt_region, len(REGIONS), anomalies)
    noise_rng = np.random.default_rng([seed, 2])  # own stream too: the anomalies stay as they were
    noisy = injection.plan_noisy_mix(noise_rng, target, injected, len(REGIONS), noisy_mix)
    injection.apply_to_targets(target, injected)
    n_credit = round(events * CREDIT_RATE)
    ev = sample_events(rng, target, events - n_credit)
    decorate(rng, acc, ev)
    injection.apply_to_regions(inject_rng, ev, injected, acc.home_region, acc.alt_region)
    injection.apply_noisy_mix(noise_rng, ev, noisy, days)
    add_credits_and_tax(rng, ev, n_credit)
    rows = deliveries(rng, ev, days, batches)
    table = billing_table(rng, acc, ev, rows, start)
    return _Bill(acc=acc, rows=rows, table=table, injected=injected, noisy=noisy)


def generate(
    out_dir: Path,
    *,
    events: int = 20_000,
    days: int = 90,
    start: date = date(2025, 1, 1),
    tenants: int = 3,
    accounts_per_tenant: int = 4,
    batches: int = 4,
    seed: int = 7,
    anomalies: int = 0,
    noisy_mix: int = 0,
) -> GenerateResult:
    """Write billing_batch_NNN.csv files and tenants.csv into out_dir; see module docstring.
    With `anomalies`, also inject that many known anomalies (see injection.py); with `noisy_mix`,
    give that many other account-services a region mix redrawn every day (a series no method should
    flag). Both are written to anomalies_truth.csv."""
    _validate(events, days, start, tenants, accounts_per_tenant, batches, seed, anomalies, noisy_mix)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    bill = _simulate(seed, events, days, start, tenants, accounts_per_tenant, batches, anomalies, noisy_mix)
    files = write_batches(out_dir, bill.table, bill.rows["batch"], batches)
    truth_file = None
    if bill.injected or bill.noisy:
        truth_file = out_dir / "anomalies_truth.csv"
        injection.write_truth(
            truth_file, bill.injected, bill.noisy, bill.acc.ids, SERVICES, REGIONS, start, days
        )
    tenants_file = write_tenants(out_dir, bill.acc)
    return GenerateResult(
        files=files,
        tenants_file=tenants_file,
        rows=bill.table.num_rows,
        redeliveries=int(bill.rows["src"].size - events),
        truth_file=truth_file,
        anomalies=len(bill.injected),
        noisy_mix=len(bill.noisy),
        credits=int(np.count_nonzero(bill.rows["units"] < 0)),
    )
