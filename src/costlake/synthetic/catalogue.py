"""What a synthetic bill is made of: the services, regions, pricing models and charge categories it
names, and the accounts (with their tenants, spend levels and service mix) that run up the costs.

The order of every tuple matters: events carry indexes into them, and SERVICES is ordered by
popularity because its rank drives the Zipf-like weight in make_accounts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Ordered by popularity: rank drives the Zipf-like weight in make_accounts.
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
COMMITMENT_SERVICES = frozenset(
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


@dataclass(frozen=True)
class Accounts:
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


def make_accounts(rng: np.random.Generator, tenants: int, per_tenant: int) -> Accounts:
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
    return Accounts(
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


def tenant_id(index: int) -> str:
    """0 -> 'tenant-a', 25 -> 'tenant-z', 26 -> 'tenant-aa': spreadsheet-style names for any count."""
    out = ""
    i = index + 1
    while i:
        i, r = divmod(i - 1, 26)
        out = chr(ord("a") + r) + out
    return f"tenant-{out}"
