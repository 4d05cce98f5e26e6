"""Synthetic billing data generator for costlake.

Writes the project's native billing CSV export as several batch files (in
ingestion order) plus a ``tenants.csv`` mapping accounts to tenants. The data
is shaped like a real AWS bill -- skewed service popularity, a stable service
mix per account, weekly seasonality, lognormal line items -- and deliberately
carries the defects the pipeline must cope with: re-delivered events with
corrected costs, credits, and inconsistently spelled service names. On request
it injects known anomalies and writes their ground truth (see injection.py).

Everything is vectorised with numpy/pyarrow and fully determined by ``seed``.
Costs are carried as int64 units of 1e-10 USD and formatted to text from those
integers, so the written values never pass through float.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from numbers import Integral
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from costlake.synthetic import injection

HEADER = (
    "event_id",
    "usage_date",
    "account_id",
    "service_name",
    "region",
    "pricing_model",
    "charge_category",
    "cost_usd",
    "currency",
    "ingestion_ts",
)
TENANTS_HEADER = ("account_id", "tenant_id", "account_name")

# Ordered by popularity: rank drives the Zipf-like weight in _make_accounts.
SERVICES: tuple[str, ...] = (
    "AmazonEC2",
    "AmazonS3",
    "AmazonRDS",
    "AmazonEKS",
    "AmazonRedshift",
    "AWSDataTransfer",
    "AmazonCloudFront",
    "AmazonDynamoDB",
    "AWSLambda",
    "AmazonElastiCache",
    "AmazonCloudWatch",
    "AmazonVPC",
    "AmazonES",
    "AmazonSageMaker",
    "ElasticMapReduce",
    "AmazonEFS",
    "AmazonKinesis",
    "AmazonMSK",
    "AWSGlue",
    "AmazonAthena",
    "AmazonECR",
    "AmazonECS",
    "AWSBackup",
    "AmazonGuardDuty",
    "AWSConfig",
    "AWSCloudTrail",
    "AmazonApiGateway",
    "AWSQueueService",
    "AmazonSNS",
    "AmazonRoute53",
    "AWSKMS",
    "AWSSecretsManager",
    "AmazonStates",
    "AmazonCognito",
    "AmazonSES",
    "AWSWAF",
)
# Only these can be bought with commitments or spot; everything else bills on demand.
_COMMITMENT_SERVICES = frozenset(
    {
        "AmazonEC2",
        "AmazonRDS",
        "AmazonRedshift",
        "AmazonElastiCache",
        "AmazonES",
        "AmazonSageMaker",
        "AWSLambda",
        "AmazonECS",
    }
)
REGIONS: tuple[str, ...] = (
    "us-east-1",
    "us-east-2",
    "us-west-2",
    "eu-west-1",
    "eu-central-1",
    "ap-southeast-1",
    "ap-northeast-1",
    "sa-east-1",
)
PRICING_MODELS: tuple[str, ...] = ("on_demand", "reserved", "spot", "savings_plan")
CHARGE_CATEGORIES: tuple[str, ...] = ("usage", "credit", "tax")
_TEAMS = ("payments", "data", "web", "search", "ml", "identity", "platform", "analytics", "checkout", "app")
_ENVS = ("prod", "staging", "dev")

UNITS_PER_USD = 10**10  # cost precision: 10 decimal places
REDELIVERY_RATE = 0.03
CREDIT_RATE = 0.01
TAX_RATE = 0.002
MESSY_NAME_RATE = 0.05
_HOUR = 3600


@dataclass(frozen=True)
class GenerateResult:
    """What generate() wrote; `rows` and `credits` count rows over all billing files."""

    files: list[Path]
    tenants_file: Path
    rows: int
    redeliveries: int
    credits: int
    truth_file: Path | None = None  # anomalies_truth.csv when anomalies were injected
    anomalies: int = 0


@dataclass(frozen=True)
class _Accounts:
    ids: np.ndarray  # int64, 12 digits
    tenant: np.ndarray  # tenant index per account
    names: list[str]
    level: np.ndarray  # typical daily spend in USD
    growth: np.ndarray  # gentle per-day drift so series are not flat
    weekend: np.ndarray  # weekend multiplier (< 1)
    mix: np.ndarray  # (accounts, services) share of spend, rows sum to 1
    home_region: np.ndarray
    alt_region: np.ndarray
    pricing_cum: np.ndarray  # (accounts, len(PRICING_MODELS)) cumulative probabilities


def _validate(
    events: int, days: int, start: date, tenants: int, accounts_per_tenant: int, batches: int, seed: int
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
        if not isinstance(value, Integral) or isinstance(value, bool) or value < minimum:
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if batches > days:
        raise ValueError(f"batches ({batches}) cannot exceed days ({days}): each batch delivers >= 1 day")
    if not isinstance(start, date):
        raise ValueError(f"start must be a datetime.date, got {start!r}")


def _letters(i: int) -> str:
    """0 -> 'a', 25 -> 'z', 26 -> 'aa': spreadsheet-style names for any tenant count."""
    out = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        out = chr(ord("a") + r) + out
    return out


def _make_accounts(rng: np.random.Generator, tenants: int, per_tenant: int) -> _Accounts:
    n, n_svc = tenants * per_tenant, len(SERVICES)
    ids = rng.choice(9 * 10**11, size=n, replace=False).astype(np.int64) + 10**11
    combos = [f"{t}-{e}" for t in _TEAMS for e in _ENVS]
    order = rng.permutation(len(combos))
    names = [
        combos[order[i % len(combos)]] + (f"-{i // len(combos) + 1}" if i >= len(combos) else "")
        for i in range(n)
    ]
    # Zipf-ish popularity makes a handful of services carry most of the spend.
    popularity = 1.0 / np.arange(1, n_svc + 1) ** 1.3
    include = rng.random((n, n_svc)) < np.linspace(1.0, 0.35, n_svc)
    include[np.arange(n_svc) % n, np.arange(n_svc)] = True  # every service used somewhere
    mix = popularity * rng.lognormal(0.0, 0.6, (n, n_svc)) * include
    home = rng.integers(0, len(REGIONS), n)
    return _Accounts(
        ids=ids,
        tenant=np.arange(n) // per_tenant,
        names=names,
        level=rng.lognormal(np.log(1500.0), 0.9, n),
        growth=rng.uniform(-0.001, 0.003, n),
        weekend=rng.uniform(0.6, 0.85, n),
        mix=mix / mix.sum(axis=1, keepdims=True),
        home_region=home,
        alt_region=(home + rng.integers(1, len(REGIONS), n)) % len(REGIONS),
        pricing_cum=np.cumsum(rng.dirichlet([4.0, 2.0, 1.0, 2.0], n), axis=1),
    )


def _daily_cost_targets(rng: np.random.Generator, acc: _Accounts, days: int, start: date) -> np.ndarray:
    """Expected USD per (day, account, service). The one place that shapes the time series:
    injected anomalies (spikes, step changes) can later be multiplied into this array."""
    n_acc, n_svc = acc.mix.shape
    t = np.arange(days)
    weekend = ((start.weekday() + t) % 7 >= 5)[:, None]
    daily = acc.level * np.where(weekend, acc.weekend, 1.0) * (1.0 + acc.growth) ** t[:, None]
    daily = daily * rng.lognormal(0.0, 0.05, (days, n_acc))  # account-level day noise
    return daily[:, :, None] * acc.mix[None] * rng.lognormal(0.0, 0.10, (days, n_acc, n_svc))


def _sample_events(rng: np.random.Generator, target: np.ndarray, events: int) -> dict[str, np.ndarray]:
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


def _format_units(units: np.ndarray) -> pa.Array:
    """int64 1e-10 USD -> plain decimal text ('12.5', '-0.0000000042'), via integers only."""
    mag = np.abs(units)
    whole = pa.array(mag // UNITS_PER_USD).cast(pa.string())
    frac = pc.utf8_lpad(pa.array(mag % UNITS_PER_USD).cast(pa.string()), width=10, padding="0")
    frac = pc.utf8_rtrim(frac, characters="0")
    text = pc.if_else(pc.equal(frac, ""), whole, pc.binary_join_element_wise(whole, frac, "."))
    return pc.if_else(pa.array(units < 0), pc.binary_join_element_wise("-", text, ""), text)


def _messy_names(rng: np.random.Generator, service: np.ndarray) -> pa.Array:
    """Canonical names, with ~5% in wrong case or padded with spaces, as real exports do."""
    canon = pc.take(pa.array(SERVICES), pa.array(service))
    variant = np.where(rng.random(service.size) < MESSY_NAME_RATE, rng.integers(1, 6, service.size), 0)
    return pc.choose(
        pa.array(variant),
        canon,
        pc.utf8_upper(canon),
        pc.utf8_lower(canon),
        pc.binary_join_element_wise(" ", canon, ""),
        pc.binary_join_element_wise(canon, " ", ""),
        pc.binary_join_element_wise(" ", canon, " ", ""),
    )


def _write_csv(path: Path, header: tuple[str, ...], table: pa.Table) -> None:
    # pyarrow always quotes the header, so write our exact header line ourselves.
    with open(path, "wb") as fh:
        fh.write((",".join(header) + "\n").encode())
        pacsv.write_csv(table, fh, pacsv.WriteOptions(include_header=False, quoting_style="none"))


def _decorate(rng: np.random.Generator, acc: _Accounts, ev: dict[str, np.ndarray]) -> None:
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
    commit = np.array([s in _COMMITMENT_SERVICES for s in SERVICES])
    ev["pricing"] = np.where(commit[ev["service"]], np.minimum(pricing, len(PRICING_MODELS) - 1), 0)


def _add_credits_and_tax(rng: np.random.Generator, ev: dict[str, np.ndarray], n_credit: int) -> None:
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


def _deliveries(
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


def _billing_table(
    rng: np.random.Generator,
    acc: _Accounts,
    ev: dict[str, np.ndarray],
    rows: dict[str, np.ndarray],
    start: date,
) -> pa.Table:
    """Render the output rows as the native CSV columns (all strings, written verbatim)."""
    src = rows["src"]
    usage = np.datetime64(start, "D") + ev["day"][src]
    ingest = (usage + 1).astype("datetime64[s]") + rows["offset"]

    def lookup(values: tuple[str, ...], idx: np.ndarray) -> pa.Array:
        return pc.take(pa.array(values), pa.array(idx))

    return pa.table(
        [
            pc.binary_join_element_wise("evt-", pc.utf8_lpad(pa.array(src).cast(pa.string()), 9, "0"), ""),
            pa.array(usage).cast(pa.string()),
            pa.array(acc.ids[ev["account"][src]]).cast(pa.string()),
            _messy_names(rng, ev["service"][src]),
            lookup(REGIONS, ev["region"][src]),
            lookup(PRICING_MODELS, ev["pricing"][src]),
            lookup(CHARGE_CATEGORIES, ev["category"][src]),
            _format_units(rows["units"]),
            lookup(("USD",), np.zeros(src.size, np.int64)),
            pa.array(ingest).cast(pa.string()),  # 'YYYY-MM-DD HH:MM:SS'; 10x faster than strftime
        ],
        names=list(HEADER),
    )


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
) -> GenerateResult:
    """Write billing_batch_NNN.csv files and tenants.csv into out_dir; see module docstring.
    With `anomalies`, also inject that many known anomalies (see injection.py) and write them to
    anomalies_truth.csv."""
    _validate(events, days, start, tenants, accounts_per_tenant, batches, seed)
    if not isinstance(anomalies, Integral) or isinstance(anomalies, bool) or anomalies < 0:
        raise ValueError(f"anomalies must be an integer >= 0, got {anomalies!r}")
    rng = np.random.default_rng(seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    acc = _make_accounts(rng, tenants, accounts_per_tenant)
    target = _daily_cost_targets(rng, acc, days, start)
    inject_rng = np.random.default_rng([seed, 1])  # own stream: no anomalies, same data as before
    injected = injection.plan(inject_rng, target, acc.home_region, acc.alt_region, len(REGIONS), anomalies)
    injection.apply_to_targets(target, injected)
    n_credit = round(events * CREDIT_RATE)
    ev = _sample_events(rng, target, events - n_credit)
    _decorate(rng, acc, ev)
    injection.apply_to_regions(inject_rng, ev, injected, acc.home_region, acc.alt_region)
    _add_credits_and_tax(rng, ev, n_credit)
    rows = _deliveries(rng, ev, days, batches)
    table = _billing_table(rng, acc, ev, rows, start)

    files = []
    bounds = np.concatenate([[0], np.cumsum(np.bincount(rows["batch"], minlength=batches))])
    for k in range(batches):
        files.append(out_dir / f"billing_batch_{k + 1:03d}.csv")
        _write_csv(files[-1], HEADER, table.slice(bounds[k], bounds[k + 1] - bounds[k]))
    truth_file = None
    if injected:
        truth_file = out_dir / "anomalies_truth.csv"
        injection.write_truth(truth_file, injected, acc.ids, SERVICES, REGIONS, start)
    tenants_file = out_dir / "tenants.csv"
    tenant_ids = [f"tenant-{_letters(int(t))}" for t in acc.tenant]
    _write_csv(
        tenants_file,
        TENANTS_HEADER,
        pa.table(
            [pa.array(acc.ids).cast(pa.string()), pa.array(tenant_ids), pa.array(acc.names)],
            names=list(TENANTS_HEADER),
        ),
    )
    return GenerateResult(
        files=files,
        tenants_file=tenants_file,
        rows=table.num_rows,
        redeliveries=int(rows["src"].size - events),
        truth_file=truth_file,
        anomalies=len(injected),
        credits=int(np.count_nonzero(rows["units"] < 0)),
    )
