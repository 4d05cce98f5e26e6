"""Noisy-mix series: the region split is redrawn every day, the spend is not touched, and asking for
none leaves the generated files exactly as they were before the option existed."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from small_bills import SMALL, Bill

from costlake.synthetic.generate import GenerateResult, generate
from helpers import cli


def _noisy(bill: Bill) -> list[dict[str, str]]:
    return [t for t in bill.truth if t["kind"] == "noisy_mix"]


def test_truth_rows_say_no_alarm_over_the_whole_range(small_bill: Callable[..., Bill]) -> None:
    bill = small_bill()
    noisy = _noisy(bill)
    assert bill.result.noisy_mix == len(noisy) == 3
    for t in noisy:
        assert (t["start_date"], t["days"]) == ("2025-01-01", str(SMALL["days"]))
        assert (t["expected_kind"], t["magnitude"], t["cause_dimension"], t["cause_value"]) == (
            "none",
            "0.00",
            "",
            "",
        )
    anomalies = {(t["account_id"], t["service_name"]) for t in bill.truth if t["kind"] != "noisy_mix"}
    assert not anomalies & {(t["account_id"], t["service_name"]) for t in noisy}


def test_the_region_split_changes_from_day_to_day(small_bill: Callable[..., Bill]) -> None:
    for t in _noisy(small_bill()):
        by_day: dict[str, dict[str, Decimal]] = defaultdict(dict)
        for (day, region), cost in small_bill().series(t["account_id"], t["service_name"]).items():
            by_day[day][region] = cost
        assert len(by_day) == SMALL["days"]
        assert len({r for split in by_day.values() for r in split}) >= 3
        top = [max(split, key=split.__getitem__) for _, split in sorted(by_day.items())]
        assert len(set(top)) >= 3, "the largest region changes"
        assert sum(a != b for a, b in zip(top, top[1:], strict=False)) >= SMALL["days"] // 3


def test_spend_is_unchanged_only_regions_move(small_bill: Callable[..., Bill]) -> None:
    noisy, quiet = small_bill(noisy_mix=3), small_bill(noisy_mix=0)
    assert [t for t in noisy.truth if t["kind"] != "noisy_mix"] == quiet.truth  # same anomalies

    def per_day(bill: Bill, regions: bool) -> dict[tuple[str, ...], Decimal]:
        out: dict[tuple[str, ...], Decimal] = defaultdict(Decimal)
        for (account, service, day, region), cost in bill.cost.items():
            out[(account, service, day, region) if regions else (account, service, day)] += cost
        return dict(out)

    assert per_day(noisy, regions=False) == per_day(quiet, regions=False)
    after, before = per_day(noisy, regions=True), per_day(quiet, regions=True)
    moved = {key[:2] for key in after.keys() | before.keys() if after.get(key) != before.get(key)}
    assert moved == {(t["account_id"], t["service_name"]) for t in _noisy(noisy)}


def _digest(result: GenerateResult) -> str:
    h = hashlib.sha256()
    for path in [*result.files, result.tenants_file, *filter(None, [result.truth_file])]:
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


@pytest.mark.parametrize(
    ("options", "digest"),
    [
        # Digests of the files generated before step_up_moved and noisy_mix existed: with five
        # anomalies or fewer and no noisy-mix series, every byte must stay the same.
        (
            {"events": 3000, "days": 60, "seed": 11},
            "9d1900317cc5bb06fbf62ae60a091398fca6f7aa5cbace3c6459edea02ac1d86",
        ),
        (
            {"events": 5000, "days": 60, "tenants": 2, "accounts_per_tenant": 3, "anomalies": 5, "seed": 4},
            "1814316f7d2b9f81cb0b7bb97d373aca24f43ce49bd7009e0d60a75f66418ef0",
        ),
    ],
)
def test_no_noisy_mix_writes_the_same_bytes_as_before(
    tmp_path: Path, options: dict[str, int], digest: str
) -> None:
    assert _digest(generate(tmp_path / "default", **options)) == digest
    assert _digest(generate(tmp_path / "zero", noisy_mix=0, **options)) == digest


def test_noisy_mix_only_writes_a_truth_file(tmp_path: Path) -> None:
    made = generate(tmp_path, **SMALL, noisy_mix=2)
    assert made.anomalies == 0 and made.noisy_mix == 2 and made.truth_file is not None
    assert made.truth_file.read_text().count("noisy_mix,none") == 2


@pytest.mark.parametrize(("noisy_mix", "message"), [(-1, "noisy_mix must be"), (10_000, "noisy-mix series")])
def test_bad_noisy_mix_is_refused(tmp_path: Path, noisy_mix: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate(tmp_path / "out", **SMALL, anomalies=6, noisy_mix=noisy_mix)


def test_cli_noisy_mix(tmp_path: Path) -> None:
    done = cli(
        tmp_path / "wh",
        "generate",
        str(tmp_path / "gen"),
        "--events",
        "20000",
        "--days",
        "60",
        "--anomalies",
        "6",
        "--noisy-mix",
        "2",
    )
    assert done.returncode == 0, done.stderr
    assert "(6 injected anomalies, 2 noisy-mix series)" in done.stdout
    refused = cli(tmp_path / "wh", "generate", str(tmp_path / "gen2"), "--noisy-mix", "-1")
    assert refused.returncode == 1 and "noisy_mix must be" in refused.stderr
