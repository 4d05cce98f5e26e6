"""Tenant-scoped readers: one tenant never sees another's rows, accounts, keys or counts."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import pytest
from pydantic import ValidationError

from costlake.catalog import readers
from costlake.catalog.filters import AnomalyFilters, CostFilters, DailyCostFilters, Page
from costlake.catalog.views import UnknownTenant, run_query, tenant_accounts
from costlake.errors import InputError
from costlake.lake.warehouse import Warehouse
from two_tenants import A1, A2, B1, C1, DAYS, SERIES, START

OWNED = {"team-a": {A1, A2}, "team-b": {B1}, "unassigned": {C1}, None: {A1, A2, B1, C1}}


def every_page(read, *args, limit: int = 1000):  # type: ignore[no-untyped-def]
    """All rows of a listing, page by page, and how many pages it took."""
    rows, after, pages = [], None, 0
    while True:
        page = read(*args, Page(limit=limit, after=after))
        rows += page.rows
        pages += 1
        if page.next is None:
            return rows, pages
        after = page.next


def sql_total(wh: Warehouse, table: str, column: str, accounts: set[str]) -> Decimal:
    listed = ", ".join(f"'{a}'" for a in sorted(accounts))
    sql = f"SELECT sum({column}) AS s FROM {table} WHERE account_id IN ({listed})"
    [row] = run_query(wh, sql).to_pylist()
    return row["s"]


def test_the_tenant_filter_is_dim_account_as_it_is_now(lake: Warehouse) -> None:
    assert tenant_accounts(lake, "team-a") == [A1, A2]
    assert tenant_accounts(lake, "team-b") == [B1]
    assert tenant_accounts(lake, "unassigned") == [C1]
    for unknown in ("team-c", "", "TEAM-A", "team-a' OR '1'='1"):
        with pytest.raises(UnknownTenant, match="unknown tenant"):
            tenant_accounts(lake, unknown)
        with pytest.raises(UnknownTenant):
            readers.accounts(lake, unknown)


@pytest.mark.parametrize("tenant", ["team-a", "team-b", "unassigned", None])
def test_every_reader_keeps_to_the_tenants_accounts(lake: Warehouse, tenant: str | None) -> None:
    owned = OWNED[tenant]
    found = readers.accounts(lake, tenant)
    assert {a.account_id for a in found} == owned
    assert all(a.tenant_id == (tenant or a.tenant_id) for a in found)

    by_account, _ = every_page(readers.daily_costs, lake, tenant, DailyCostFilters())
    assert {r.account_id for r in by_account} == owned
    billed = sql_total(lake, "daily_account_cost", "total_cost_usd", owned)
    assert sum(r.cost_usd for r in by_account) == billed
    events = 2 * sum(last + 1 for account, *_, last, _spike in SERIES if account in owned)
    assert sum(r.event_count for r in by_account) == events

    by_service, _ = every_page(readers.daily_costs, lake, tenant, DailyCostFilters(group_by="service"))
    assert sum(r.cost_usd for r in by_service) == sum(r.cost_usd for r in by_account)
    assert sum(r.event_count for r in by_service) == sum(r.event_count for r in by_account)

    stage2, _ = every_page(readers.account_service_costs, lake, tenant, CostFilters())
    assert {r.account_id for r in stage2} == owned
    assert sum(r.effective_cost_usd for r in stage2) == sql_total(
        lake, "account_service_day_cost", "effective_cost_usd", owned
    )

    found_anomalies, _ = every_page(readers.anomalies, lake, tenant, AnomalyFilters())
    assert {a.account_id for a in found_anomalies} == owned & {A1, B1}  # the two spikes
    bulk = readers.all_anomalies(lake, tenant)
    assert set(bulk.column("account_id").to_pylist()) == owned & {A1, B1}


@pytest.mark.parametrize(("tenant", "other"), [("team-a", B1), ("team-b", A1), ("team-a", C1)])
def test_naming_another_tenants_account_answers_like_an_account_that_does_not_exist(
    lake: Warehouse, tenant: str, other: str
) -> None:
    for account in (other, "999999999999"):
        costs = CostFilters(account_id=account)
        for group_by in ("account", "service"):
            daily = DailyCostFilters(account_id=account, group_by=group_by)
            assert readers.daily_costs(lake, tenant, daily).rows == []
        assert readers.account_service_costs(lake, tenant, costs).rows == []
        assert readers.anomalies(lake, tenant, AnomalyFilters(account_id=account)).rows == []
    # The operator sees the other account; the tenant's own answer is not empty either.
    assert readers.account_service_costs(lake, None, CostFilters(account_id=other)).rows
    own = min(OWNED[tenant])
    assert readers.account_service_costs(lake, tenant, CostFilters(account_id=own)).rows


def test_a_shared_service_counts_only_the_tenants_own_spend(lake: Warehouse) -> None:
    day = START + dt.timedelta(days=2)
    window = {"date_from": day, "date_to": day, "service": "AmazonEC2"}
    ec2 = {
        tenant: readers.daily_costs(lake, tenant, DailyCostFilters(group_by="service", **window)).rows
        for tenant in ("team-a", "team-b", None)
    }
    # level + (i * 7) % 5 with i = 2: A1 304, B1 44, C1 24; two events each.
    assert [(r.service_name, r.cost_usd, r.event_count) for r in ec2["team-a"]] == [("amazonec2", 304, 2)]
    assert [(r.cost_usd, r.event_count) for r in ec2["team-b"]] == [(44, 2)]
    assert [(r.cost_usd, r.event_count) for r in ec2[None]] == [(304 + 44 + 24, 6)]
    assert readers.latest_usage_date(lake, "team-b") == START + dt.timedelta(days=DAYS - 6)
    assert readers.latest_usage_date(lake, "team-a") == START + dt.timedelta(days=DAYS - 1)
    assert readers.latest_usage_date(lake, None) == START + dt.timedelta(days=DAYS - 1)


def test_money_is_exact_decimal_billed_or_effective(lake: Warehouse) -> None:
    day = START + dt.timedelta(days=1)  # A1: 300 + 7 % 5 = 302, as 188.750 + 113.250
    only = {"date_from": day, "date_to": day, "account_id": A1}
    [billed] = readers.daily_costs(lake, "team-a", DailyCostFilters(**only)).rows
    [effective] = readers.daily_costs(lake, "team-a", DailyCostFilters(cost="effective", **only)).rows
    assert isinstance(billed.cost_usd, Decimal)
    assert (billed.cost_usd, effective.cost_usd) == (Decimal("302"), Decimal("301.75"))
    assert (billed.account_id, billed.service_name, billed.data_complete) == (A1, None, True)
    [row] = readers.account_service_costs(lake, "team-a", CostFilters(**only)).rows
    assert (row.total_cost_usd, row.effective_cost_usd) == (Decimal(302), Decimal("301.75"))
    assert row.event_count == 2


def test_pages_walk_the_listing_once_in_its_total_order(lake: Warehouse) -> None:
    whole, pages = every_page(readers.account_service_costs, lake, None, CostFilters())
    paged, many = every_page(readers.account_service_costs, lake, None, CostFilters(), limit=7)
    assert paged == whole and pages == 1 and many == -(-len(whole) // 7)
    keys = [(r.usage_date, r.account_id, r.service_name) for r in whole]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    daily, _ = every_page(readers.daily_costs, lake, "team-a", DailyCostFilters(group_by="service"), limit=5)
    keys = [(r.usage_date, r.service_name) for r in daily]
    assert keys == sorted(set(keys)) and len(keys) == 2 * DAYS
    first = readers.daily_costs(lake, None, DailyCostFilters(), Page(limit=3))
    assert len(first.rows) == 3 and first.next is not None
    # A position belongs to its listing; a forged or foreign one is an input error, not a restart.
    for bad in (first.next, "not-a-position", "", "W10"):
        with pytest.raises(InputError, match="page position"):
            readers.account_service_costs(lake, None, CostFilters(), Page(after=bad))
    with pytest.raises(InputError, match="page position"):
        readers.daily_costs(lake, None, DailyCostFilters(group_by="service"), Page(after=first.next))


@pytest.mark.parametrize("sort", readers.ANOMALY_SORTS)
def test_anomalies_page_through_in_every_order(lake: Warehouse, sort: str) -> None:
    whole = readers.anomalies(lake, None, AnomalyFilters(), Page(limit=1000), sort).rows
    assert len(whole) >= 2
    paged, after = [], None
    while True:  # one row a page: every page but the last has a position to go on from
        page = readers.anomalies(lake, None, AnomalyFilters(), Page(limit=1, after=after), sort)
        paged += page.rows
        if (after := page.next) is None:
            break
    assert paged == whole
    if sort == "-impact":
        assert [abs(a.impact_usd) for a in whole] == sorted((abs(a.impact_usd) for a in whole), reverse=True)
    else:
        assert [a.usage_date for a in whole] == sorted((a.usage_date for a in whole), reverse=sort == "-date")


def test_filters_window_service_kind_and_impact(lake: Warehouse) -> None:
    first, last = START + dt.timedelta(days=10), START + dt.timedelta(days=12)
    rows = readers.account_service_costs(lake, None, CostFilters(date_from=first, date_to=last)).rows
    assert {r.usage_date for r in rows} == {first, START + dt.timedelta(days=11), last}
    rds = readers.account_service_costs(lake, None, CostFilters(service=" AmazonRDS ")).rows
    assert {(r.account_id, r.service_name) for r in rds} == {(B1, "amazonrds")}
    spikes = readers.anomalies(lake, None, AnomalyFilters(kind="spike")).rows
    assert [(a.account_id, a.kind) for a in spikes] == [(B1, "spike"), (A1, "spike")]  # by usage_date
    big = readers.anomalies(lake, None, AnomalyFilters(min_impact=Decimal("1000"))).rows
    assert [a.account_id for a in big] == [A1]
    assert readers.anomalies(lake, None, AnomalyFilters(kind="dip")).rows == []
    [a1] = big
    assert a1.impact_usd == Decimal("1197.5") and a1.contributors
    assert all(isinstance(c.contribution_usd, Decimal) for c in a1.contributors)


def test_filter_values_are_parameters_never_sql(lake: Warehouse) -> None:
    for value in ("x' OR '1'='1", "'; DROP VIEW cost_anomalies; --", A1 + "' OR account_id <> '"):
        assert readers.account_service_costs(lake, "team-b", CostFilters(account_id=value)).rows == []
        assert readers.anomalies(lake, None, AnomalyFilters(kind=value, service=value)).rows == []
    assert readers.anomalies(lake, None).rows  # nothing was dropped


def test_filters_and_pages_refuse_what_makes_no_sense() -> None:
    day = dt.date(2025, 1, 2)
    for bad in (
        lambda: CostFilters(date_from=day, date_to=day - dt.timedelta(days=1)),
        lambda: CostFilters(tenant="team-b"),  # type: ignore[call-arg]
        lambda: DailyCostFilters(group_by="region"),  # type: ignore[arg-type]
        lambda: AnomalyFilters(min_impact=Decimal(-1)),
        lambda: Page(limit=0),
        lambda: Page(limit=100_000),
    ):
        with pytest.raises(ValidationError):
            bad()


def test_accounts_feed_the_explanation_layer_as_a_table(lake: Warehouse) -> None:
    table = readers.accounts_table(readers.accounts(lake, "team-a"))
    assert table.column_names == [f.name for f in dataclasses.fields(readers.Account)]
    assert table.select(["account_id", "account_name", "tenant_id"]).to_pylist() == [
        {"account_id": A1, "account_name": "team-a-111", "tenant_id": "team-a"},
        {"account_id": A2, "account_name": "team-a-222", "tenant_id": "team-a"},
    ]
    assert readers.accounts_table([]).num_rows == 0


def test_readers_in_a_session_share_one_view_of_the_lake(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from costlake.pipeline.tenants import load_tenants
    from two_tenants import build_lake

    wh = build_lake(tmp_path)
    moved = tmp_path / "moved.csv"
    moved.write_text(f"account_id,tenant_id,account_name\n{B1},team-a,moved\n")
    with readers.session(wh, "team-a", readers.QUESTION_TABLES):
        before = {a.account_id for a in readers.accounts(wh, "team-a")}
        load_tenants(Warehouse(wh.settings), moved)  # another writer commits meanwhile
        assert {a.account_id for a in readers.accounts(wh, "team-a")} == before == {A1, A2}
        assert B1 in {a.account_id for a in readers.accounts(wh, None)}  # another scope reads afresh
    assert {a.account_id for a in readers.accounts(wh, "team-a")} == {A1, A2, B1}  # the session is over
