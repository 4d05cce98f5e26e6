"""Known anomalies for the generator: spikes, step changes, new services, drops and region shifts,
planned on the generator's cost targets and written to a ground-truth file.

Each injected anomaly has a cause the root-cause analysis should name: the region that carried the
extra spend (spike, step up, new service, region shift) or the region whose spend stopped (drop).
The plan uses its own random stream, so a dataset without anomalies is the same with or without
this module.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np

KINDS = ("spike", "step_up", "new_service", "drop", "region_shift")
# What the `baseline` method should report for each injected kind.
EXPECTED_KIND = {
    "spike": "spike",
    "step_up": "step_up",
    "new_service": "new_service",
    "drop": "step_down",
    "region_shift": "mix_shift",
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


@dataclass(frozen=True)
class Injected:
    kind: str
    account: int  # account index
    service: int  # service index
    day: int  # first affected day index
    days: int  # affected days
    magnitude: float  # cost multiplier on the affected days (spike, step) or remaining share (drop)
    region: int  # the cause region index


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
    out = []
    for (a, s), kind in zip(picked, kinds, strict=True):
        day = int(rng.integers(FIRST_DAY, days - 9))
        others = [r for r in range(n_regions) if r not in (home[a], alt[a])]
        region = int(home[a]) if kind == "drop" else int(rng.choice(others))
        magnitude = {
            "spike": rng.uniform(2.5, 4.0),
            "step_up": rng.uniform(1.8, 2.6),
            "new_service": 1.0,
            "drop": 0.25,
            "region_shift": 1.0,
        }[kind]
        length = int(rng.integers(1, 3)) if kind == "spike" else days - day
        out.append(Injected(kind, a, s, day, length, float(magnitude), region))
    return out


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
        if x.kind in ("spike", "step_up"):  # the extra (m - 1) / m of the cost runs in the cause region
            extra = hit & (rng.random(region.size) < (x.magnitude - 1.0) / x.magnitude)
            region[extra] = x.region
        elif x.kind == "new_service":
            region[hit] = x.region
        elif x.kind == "drop":  # what is left runs elsewhere: the cause region's spend stopped
            region[hit & (region == x.region)] = alt[x.account]
        elif x.kind == "region_shift":  # the home region's spend moves to the cause region
            region[hit & (region == home[x.account])] = x.region


def write_truth(
    path: Path,
    injected: list[Injected],
    account_ids: np.ndarray,
    services: tuple[str, ...],
    regions: tuple[str, ...],
    start: date,
) -> None:
    """The ground truth as CSV, with service names as the pipeline publishes them (trimmed, lower-case)."""
    rows = sorted(
        (
            str(account_ids[x.account]),
            services[x.service].strip().lower(),
            (start + timedelta(days=x.day)).isoformat(),
            x.kind,
            EXPECTED_KIND[x.kind],
            x.days,
            f"{x.magnitude:.2f}",
            "region",
            regions[x.region],
        )
        for x in injected
    )
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(TRUTH_HEADER)
        writer.writerows(rows)


def read_truth(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))
