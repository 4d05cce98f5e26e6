"""Known anomalies for the generator: spikes, step changes, new services, drops, region shifts and
steps whose extra spend moves region, planned on the generator's cost targets and written to a
ground-truth file; and series whose region mix is noise, which no method should flag.

Each injected anomaly has a cause the root-cause analysis should name: the region that carried the
extra spend (spike, step up, new service, region shift), the region that carried most of it (a step
up whose extra spend moves after a week) or the region whose spend stopped (drop). A noisy-mix series
has no anomaly and no cause: its spend lands in 3-4 regions in proportions redrawn every day, so its
mix changes daily without ever moving for good. The plans use their own random streams, so a dataset
without anomalies or noisy series is the same with or without this module.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np

KINDS = ("spike", "step_up", "new_service", "drop", "region_shift", "step_up_moved")
NOISY_MIX = "noisy_mix"  # the truth kind of a series that must stay quiet
# What the `baseline` method should report for each injected kind ("none": no alarm allowed).
EXPECTED_KIND = {
    "spike": "spike",
    "step_up": "step_up",
    "new_service": "new_service",
    "drop": "step_down",
    "region_shift": "mix_shift",
    "step_up_moved": "step_up",
    NOISY_MIX: "none",
}
TRUTH_HEADER = (
    "account_id",
    "service_name",
    "start_date",
    "kind",
    "expected_kind",
    "days",
    "magnitude",
    "cause_dimension",
    "cause_value",
)
MIN_DAILY_USD = 60.0  # only services this large get an anomaly: each must be clearly visible
FIRST_DAY = 35  # leave a full baseline window before the first anomaly
MOVE_AFTER = 7  # step_up_moved: days its extra spend runs in the first region before it moves
MOVED_MIN_DAYS = 21  # ... and its shortest length, so the second region carries most of the extra spend
NOISY_REGIONS = (3, 4)  # a noisy-mix series spreads over this many regions (either)


@dataclass(frozen=True)
class Injected:
    kind: str
    account: int  # account index
    service: int  # service index
    day: int  # first affected day index
    days: int  # affected days
    magnitude: float  # cost multiplier on the affected days (spike, step) or remaining share (drop)
    region: int  # the cause region index
    first_region: int | None = None  # step_up_moved: where the extra spend runs for MOVE_AFTER days


@dataclass(frozen=True)
class NoisyMix:
    """A series whose region mix is redrawn every day: no anomaly, nothing to report."""

    account: int
    service: int
    regions: tuple[int, ...]  # the regions its spend is spread over


def plan(
    rng: np.random.Generator,
    target: np.ndarray,
    home: np.ndarray,
    alt: np.ndarray,
    n_regions: int,
    count: int,
) -> list[Injected]:
    """`count` anomalies on distinct (account, service) pairs, kinds in turn, starts spread out."""
    days, n_acc, n_svc = target.shape
    if count == 0:
        return []
    if days < FIRST_DAY + 10:
        raise ValueError(f"anomalies need at least {FIRST_DAY + 10} days of data, got {days}")
    daily = np.median(target, axis=0)  # (accounts, services)
    candidates = [(a, s) for a in range(n_acc) for s in range(n_svc) if daily[a, s] >= MIN_DAILY_USD]
    if len(candidates) < count:
        raise ValueError(
            f"only {len(candidates)} account-services spend over ${MIN_DAILY_USD:.0f}/day: "
            f"ask for fewer anomalies or more accounts"
        )
    picked = [candidates[i] for i in rng.choice(len(candidates), count, replace=False)]
    kinds = [KINDS[i % len(KINDS)] for i in rng.permutation(count)]
    if "step_up_moved" in kinds and days < FIRST_DAY + MOVED_MIN_DAYS:
        raise ValueError(
            f"{count} anomalies include a step_up_moved, which needs at least "
            f"{FIRST_DAY + MOVED_MIN_DAYS} days of data, got {days}: ask for fewer anomalies or more days"
        )
    out = []
    for (a, s), kind in zip(picked, kinds, strict=True):
        # The draws for the first five kinds are those they always had: their datasets do not change.
        others = [r for r in range(n_regions) if r not in (home[a], alt[a])]
        first: int | None = None
        if kind == "step_up_moved":
            day = int(rng.integers(FIRST_DAY, days - MOVED_MIN_DAYS + 1))
            first, region = (int(r) for r in rng.choice(others, 2, replace=False))
        else:
            day = int(rng.integers(FIRST_DAY, days - 9))
            region = int(home[a]) if kind == "drop" else int(rng.choice(others))
        magnitudes = {
            "spike": rng.uniform(2.5, 4.0),
            "step_up": rng.uniform(1.8, 2.6),
            "new_service": 1.0,
            "drop": 0.25,
            "region_shift": 1.0,
        }
        magnitudes["step_up_moved"] = magnitudes["step_up"]
        length = int(rng.integers(1, 3)) if kind == "spike" else days - day
        out.append(Injected(kind, a, s, day, length, float(magnitudes[kind]), region, first))
    return out


def plan_noisy_mix(
    rng: np.random.Generator, target: np.ndarray, injected: list[Injected], n_regions: int, count: int
) -> list[NoisyMix]:
    """`count` account-services spending over MIN_DAILY_USD, none of them injected, with the regions
    each will spread its spend over."""
    if count == 0:
        return []
    _, n_acc, n_svc = target.shape
    daily = np.median(target, axis=0)
    taken = {(x.account, x.service) for x in injected}
    candidates = [
        (a, s)
        for a in range(n_acc)
        for s in range(n_svc)
        if daily[a, s] >= MIN_DAILY_USD and (a, s) not in taken
    ]
    if len(candidates) < count:
        raise ValueError(
            f"only {len(candidates)} account-services spend over ${MIN_DAILY_USD:.0f}/day besides the "
            f"injected anomalies: ask for fewer noisy-mix series or more accounts"
        )
    picked = [candidates[i] for i in rng.choice(len(candidates), count, replace=False)]
    return [
        NoisyMix(a, s, tuple(int(r) for r in rng.choice(n_regions, rng.choice(NOISY_REGIONS), replace=False)))
        for a, s in picked
    ]


def apply_to_targets(target: np.ndarray, injected: list[Injected]) -> None:
    """Scale the cost targets of the affected days (in place)."""
    for x in injected:
        cells = (slice(x.day, x.day + x.days), x.account, x.service)
        if x.kind == "new_service":
            level = max(float(np.median(target[:, x.account, x.service])), MIN_DAILY_USD)
            target[: x.day, x.account, x.service] = 0.0
            target[cells] = level
        elif x.kind != "region_shift":
            target[cells] *= x.magnitude


def apply_to_regions(
    rng: np.random.Generator,
    ev: dict[str, np.ndarray],
    injected: list[Injected],
    home: np.ndarray,
    alt: np.ndarray,
) -> None:
    """Move the affected events' regions so each anomaly has its cause (in place)."""
    for x in injected:
        hit = (
            (ev["account"] == x.account)
            & (ev["service"] == x.service)
            & (ev["day"] >= x.day)
            & (ev["day"] < x.day + x.days)
        )
        region = ev["region"]
        if x.kind in ("spike", "step_up", "step_up_moved"):
            # The extra (m - 1) / m of the cost runs in the cause region; a moved step's first week
            # runs elsewhere.
            extra = hit & (rng.random(region.size) < (x.magnitude - 1.0) / x.magnitude)
            region[extra] = x.region
            if x.first_region is not None:
                region[extra & (ev["day"] < x.day + MOVE_AFTER)] = x.first_region
        elif x.kind == "new_service":
            region[hit] = x.region
        elif x.kind == "drop":  # what is left runs elsewhere: the cause region's spend stopped
            region[hit & (region == x.region)] = alt[x.account]
        elif x.kind == "region_shift":  # the home region's spend moves to the cause region
            region[hit & (region == home[x.account])] = x.region


def apply_noisy_mix(
    rng: np.random.Generator, ev: dict[str, np.ndarray], noisy: list[NoisyMix], days: int
) -> None:
    """Give every event of each noisy series a region drawn from that day's random split of the
    series' regions (in place); costs are not touched, so the series' totals stay as they were."""
    region = ev["region"]
    for x in noisy:
        hit = np.flatnonzero((ev["account"] == x.account) & (ev["service"] == x.service))
        split = np.cumsum(rng.dirichlet(np.ones(len(x.regions)), days), axis=1)[ev["day"][hit]]
        pick = (rng.random(hit.size)[:, None] >= split).sum(axis=1)
        region[hit] = np.asarray(x.regions)[np.minimum(pick, len(x.regions) - 1)]


def write_truth(
    path: Path,
    injected: list[Injected],
    noisy: list[NoisyMix],
    account_ids: np.ndarray,
    services: tuple[str, ...],
    regions: tuple[str, ...],
    start: date,
    days: int,
) -> None:
    """The ground truth as CSV, with service names as the pipeline publishes them (trimmed, lower-case).
    A noisy-mix series is one row over the whole range, expected kind "none", without a cause."""

    def row(
        account: int, service: int, day: int, kind: str, length: int, magnitude: float, cause: str
    ) -> tuple[str, ...]:
        return (
            str(account_ids[account]),
            services[service].strip().lower(),
            (start + timedelta(days=day)).isoformat(),
            kind,
            EXPECTED_KIND[kind],
            str(length),
            f"{magnitude:.2f}",
            "region" if cause else "",
            cause,
        )

    rows = sorted(
        [row(x.account, x.service, x.day, x.kind, x.days, x.magnitude, regions[x.region]) for x in injected]
        + [row(x.account, x.service, 0, NOISY_MIX, days, 0.0, "") for x in noisy]
    )
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(TRUTH_HEADER)
        writer.writerows(rows)


def read_truth(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))
