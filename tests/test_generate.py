"""Tests for the synthetic billing data generator (costlake.generate)."""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from costlake.synthetic.generate import HEADER, SERVICES, GenerateResult, generate

BILLING_HEADER = (
    "event_id,usage_date,account_id,service_name,region,pricing_model,"
    "charge_category,cost_usd,currency,ingestion_ts"
)
COST_RE = re.compile(r"^-?\d+(\.\d{1,10})?$")


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _rows(result: GenerateResult) -> list[dict[str, str]]:
    """All billing rows in ingestion order, each tagged with its batch index."""
    out = []
    for batch, path in enumerate(result.files):
        for row in _read(path):
            row["_batch"] = str(batch)
            out.append(row)
    return out


def _ts(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S")


@pytest.fixture(scope="module")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[GenerateResult, list[dict[str, str]]]:
    result = generate(tmp_path_factory.mktemp("gen") / "out")
    return result, _rows(result)


def test_files_headers_and_row_counts(default_run: tuple[GenerateResult, list[dict[str, str]]]) -> None:
    result, rows = default_run
    assert [p.name for p in result.files] == [f"billing_batch_00{k}.csv" for k in range(1, 5)]
    assert result.tenants_file.name == "tenants.csv"
    for path in result.files:
        assert path.read_text().splitlines()[0] == BILLING_HEADER
    assert ",".join(HEADER) == BILLING_HEADER
    assert result.tenants_file.read_text().splitlines()[0] == "account_id,tenant_id,account_name"
    assert len(rows) == result.rows == 20_000 + result.redeliveries
    assert sum(len(path.read_text().splitlines()) - 1 for path in result.files) == result.rows


def test_same_seed_is_byte_identical_and_other_seed_differs(tmp_path: Path) -> None:
    a = generate(tmp_path / "a", events=3_000, seed=11)
    b = generate(tmp_path / "b", events=3_000, seed=11)
    c = generate(tmp_path / "c", events=3_000, seed=12)
    for pa_, pb in zip(a.files + [a.tenants_file], b.files + [b.tenants_file], strict=True):
        assert pa_.read_bytes() == pb.read_bytes()
    assert [p.read_bytes() for p in a.files] != [p.read_bytes() for p in c.files]


def test_redeliveries(default_run: tuple[GenerateResult, list[dict[str, str]]]) -> None:
    result, rows = default_run
    by_id: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        by_id[row["event_id"]].append(row)
    dups = {k: v for k, v in by_id.items() if len(v) > 1}
    assert len(dups) == result.redeliveries
    assert all(len(v) == 2 for v in dups.values())
    assert 0.02 <= len(dups) / len(by_id) <= 0.04
    for first, second in dups.values():  # rows are in file (= ingestion) order
        assert _ts(second["ingestion_ts"]) > _ts(first["ingestion_ts"])
        assert int(second["_batch"]) in (int(first["_batch"]), int(first["_batch"]) + 1)
        if int(first["_batch"]) < len(result.files) - 1:
            assert int(second["_batch"]) == int(first["_batch"]) + 1
        for col in ("usage_date", "account_id", "region", "pricing_model", "charge_category"):
            assert first[col] == second[col]
        assert first["service_name"].strip().lower() == second["service_name"].strip().lower()
        assert Decimal(first["cost_usd"]) != Decimal(second["cost_usd"])
        assert (Decimal(first["cost_usd"]) < 0) == (Decimal(second["cost_usd"]) < 0)


def test_credits_are_negative(default_run: tuple[GenerateResult, list[dict[str, str]]]) -> None:
    result, rows = default_run
    credits = [r for r in rows if r["charge_category"] == "credit"]
    assert {r["charge_category"] for r in rows} <= {"usage", "credit", "tax"}
    assert all(Decimal(r["cost_usd"]) < 0 for r in credits)
    assert all(Decimal(r["cost_usd"]) > 0 for r in rows if r["charge_category"] != "credit")
    assert len(credits) == result.credits
    assert 0.005 <= len(credits) / len(rows) <= 0.02


def test_costs_are_plain_decimals(default_run: tuple[GenerateResult, list[dict[str, str]]]) -> None:
    _, rows = default_run
    for row in rows:
        text = row["cost_usd"]
        assert COST_RE.match(text), text
        value = Decimal(text)
        exponent = value.as_tuple().exponent
        assert value.is_finite() and isinstance(exponent, int) and exponent >= -10
        assert "e" not in text.lower()
        assert row["currency"] == "USD"


def test_service_names_realistic_and_messy(default_run: tuple[GenerateResult, list[dict[str, str]]]) -> None:
    _, rows = default_run
    canonical = {r["service_name"].strip().lower() for r in rows}
    assert len(canonical) >= 30
    assert canonical <= {s.lower() for s in SERVICES}
    known = set(SERVICES)
    messy = [r["service_name"] for r in rows if r["service_name"] not in known]
    assert any(m != m.strip() for m in messy) and any(m.strip() == m.strip().upper() for m in messy)
    assert 0.03 <= len(messy) / len(rows) <= 0.07
    # Skewed popularity: the top three services carry most of the spend.
    cost: dict[str, Decimal] = defaultdict(Decimal)
    for r in rows:
        cost[r["service_name"].strip().lower()] += Decimal(r["cost_usd"])
    top3 = sum(sorted(cost.values(), reverse=True)[:3])
    assert top3 > Decimal("0.5") * sum(cost.values())


def test_dates_and_ingestion_timestamps(default_run: tuple[GenerateResult, list[dict[str, str]]]) -> None:
    result, rows = default_run
    first_day, last_day = date(2025, 1, 1), date(2025, 1, 1) + timedelta(days=89)
    for row in rows:
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", row["usage_date"])
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", row["ingestion_ts"])
        usage = date.fromisoformat(row["usage_date"])
        assert first_day <= usage <= last_day
        lag = _ts(row["ingestion_ts"]) - datetime.combine(usage + timedelta(days=1), datetime.min.time())
        assert timedelta(hours=2) <= lag <= timedelta(hours=30)
    # Each batch delivers its own consecutive slice of usage days (re-deliveries aside).
    seen: set[str] = set()
    spans = defaultdict(list)
    for row in rows:
        if row["event_id"] not in seen:
            seen.add(row["event_id"])
            spans[int(row["_batch"])].append(row["usage_date"])
    ranges = [(min(spans[k]), max(spans[k])) for k in range(len(result.files))]
    assert ranges[0][0] == first_day.isoformat() and ranges[-1][1] == last_day.isoformat()
    assert all(ranges[k][1] < ranges[k + 1][0] for k in range(len(ranges) - 1))


def test_weekends_are_cheaper(default_run: tuple[GenerateResult, list[dict[str, str]]]) -> None:
    _, rows = default_run
    daily: dict[str, Decimal] = defaultdict(Decimal)
    for r in rows:
        daily[r["usage_date"]] += Decimal(r["cost_usd"])
    weekend = [v for d, v in daily.items() if date.fromisoformat(d).weekday() >= 5]
    weekday = [v for d, v in daily.items() if date.fromisoformat(d).weekday() < 5]
    assert sum(weekend) / len(weekend) < Decimal("0.95") * sum(weekday) / len(weekday)


def test_tenants_cover_every_account(default_run: tuple[GenerateResult, list[dict[str, str]]]) -> None:
    result, rows = default_run
    tenants = _read(result.tenants_file)
    assert len(tenants) == 12 and len({t["account_id"] for t in tenants}) == 12
    assert {t["tenant_id"] for t in tenants} == {"tenant-a", "tenant-b", "tenant-c"}
    assert all(re.fullmatch(r"\d{12}", t["account_id"]) for t in tenants)
    assert all(re.fullmatch(r"[a-z]+-(prod|staging|dev)(-\d+)?", t["account_name"]) for t in tenants)
    assert {r["account_id"] for r in rows} <= {t["account_id"] for t in tenants}


def test_small_custom_run_creates_directory(tmp_path: Path) -> None:
    out = tmp_path / "nested" / "dir"
    result = generate(
        out, events=50, days=3, start=date(2024, 2, 28), tenants=30, accounts_per_tenant=1, batches=3, seed=0
    )
    assert out.is_dir() and len(result.files) == 3
    assert sum(len(_read(p)) for p in result.files) == result.rows
    tenants = _read(result.tenants_file)
    assert len(tenants) == 30 and tenants[-1]["tenant_id"] == "tenant-ad"
    dates = {r["usage_date"] for p in result.files for r in _read(p)}
    assert dates <= {"2024-02-28", "2024-02-29", "2024-03-01"}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"events": 0},
        {"events": -5},
        {"days": 0},
        {"batches": 0},
        {"batches": 91},
        {"tenants": 0},
        {"accounts_per_tenant": 0},
        {"seed": -1},
        {"events": 10.5},
        {"events": True},
        {"start": "2025-01-01"},
    ],
)
def test_bad_arguments_raise_value_error(tmp_path: Path, kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        generate(tmp_path, **kwargs)  # type: ignore[arg-type]
    assert not list(tmp_path.iterdir())  # validation happens before anything is written
