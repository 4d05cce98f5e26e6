"""bench/accounts.py: `make bench --accounts-factor K` shares each account's events out among K accounts
and changes nothing else, so the floor and costlake still publish the same totals per day."""

from __future__ import annotations

import csv
import importlib.util
from decimal import Decimal
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "accounts.py"
HEADER = ["event_id", "account_id", "service_name", "usage_date", "cost_usd", "ingestion_ts"]


@pytest.fixture(scope="module")
def accounts() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_accounts", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        writer.writerows(rows)


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _events(n: int, accounts: tuple[str, ...]) -> list[list[str]]:
    return [
        [f"evt-{i:06d}", accounts[i % len(accounts)], f"svc{i % 3}", f"2024-02-{1 + i % 5:02d}",
         f"{Decimal(i) / 7:.6f}", "2024-02-20 10:00:00"]
        for i in range(n)
    ]  # fmt: skip


def test_each_account_is_shared_out_and_every_other_value_is_kept(
    accounts: ModuleType, tmp_path: Path
) -> None:
    billing, backfill = tmp_path / "billing.csv", tmp_path / "BACKFILL.csv"
    rows = _events(600, ("000000000007", "123456789012"))
    _write(billing, rows)
    # A later version of some events (a re-delivery): it must land in the same account as the first.
    _write(backfill, [[*r[:4], "9.500000", "2024-02-21 10:00:00"] for r in rows[::10]])
    before = _read(billing)
    for path in (billing, backfill):
        accounts.spread(path, 5)
    after = _read(billing)

    assert [r["event_id"] for r in after] == [r["event_id"] for r in before]  # the order kept
    for old, new in zip(before, after, strict=True):
        assert {k: v for k, v in new.items() if k != "account_id"} == {
            k: v for k, v in old.items() if k != "account_id"
        }
        assert len(new["account_id"]) == 12 and new["account_id"].isdigit()
    new_of = {r["event_id"]: r["account_id"] for r in after}
    assert all(new_of[r["event_id"]] == r["account_id"] for r in _read(backfill))
    # Each original account became 5, none shared between two originals; the spend per day is the same.
    shares: dict[str, set[str]] = {}
    for old, new in zip(before, after, strict=True):
        shares.setdefault(old["account_id"], set()).add(new["account_id"])
    assert [len(s) for s in shares.values()] == [5, 5] and not set.intersection(*shares.values())
    assert accounts.count_accounts([billing]) == 10
    assert accounts.count_accounts([billing, backfill]) == 10


def test_a_factor_of_one_leaves_the_file_as_it_is(accounts: ModuleType, tmp_path: Path) -> None:
    billing = tmp_path / "billing.csv"
    _write(billing, _events(20, ("000000000007",)))
    text = billing.read_bytes()
    accounts.spread(billing, 1)
    assert billing.read_bytes() == text
    with pytest.raises(ValueError, match="at least 1"):
        accounts.spread(billing, 0)


def test_a_row_with_an_account_but_no_event_id_is_refused(accounts: ModuleType, tmp_path: Path) -> None:
    billing = tmp_path / "billing.csv"
    rows = _events(5, ("000000000007",))
    rows[2][0] = ""
    _write(billing, rows)
    text = billing.read_bytes()
    with pytest.raises(ValueError, match="1 row\\(s\\) with an account but no event_id"):
        accounts.spread(billing, 3)
    assert billing.read_bytes() == text  # left as it was
