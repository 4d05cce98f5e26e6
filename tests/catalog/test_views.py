"""`open_lake(..., tenant=T)`: every table cut to T's accounts, the keys they use, or nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from costlake.anomalies.job import update_anomalies
from costlake.catalog.views import (
    INGEST_BATCHES,
    SCOPE_LINKS,
    TENANT_ACCOUNTS,
    UnknownTenant,
    open_lake,
    run_query,
    tenant_scope,
)
from costlake.duck import to_arrow
from costlake.lake.manifest import latest_manifest
from costlake.lake.warehouse import Warehouse
from costlake.settings import Settings
from costlake.synthetic.generate import generate
from costlake.tables import TABLES
from helpers import ingest_and_run
from two_tenants import A1, A2, B1, C1

ACCOUNT_TABLES = sorted(name for name, tdef in TABLES.items() if "account_id" in tdef.column_names)


def test_every_table_has_a_decided_tenant_cut() -> None:
    # A new table must be placed: cut by account, by a link to published rows, or hidden.
    hidden = sorted(name for name, tdef in TABLES.items() if tenant_scope(tdef) is None)
    assert hidden == ["ingest_batches", "publish_log", "quarantine"]
    assert sorted(SCOPE_LINKS) == ["dim_pricing_model", "dim_region", "dim_service"]
    assert set(ACCOUNT_TABLES) | set(SCOPE_LINKS) | set(hidden) == set(TABLES)


@pytest.mark.parametrize(("tenant", "owned"), [("team-a", {A1, A2}), ("team-b", {B1}), ("unassigned", {C1})])
def test_a_tenants_lake_holds_only_its_accounts(lake: Warehouse, tenant: str, owned: set[str]) -> None:
    con = open_lake(lake, tenant=tenant)
    everyone = open_lake(lake)
    try:
        for name in ACCOUNT_TABLES:
            sql = f"SELECT DISTINCT account_id FROM {name}"
            seen = set(to_arrow(con, sql).column("account_id").to_pylist())
            assert seen <= owned and (seen == owned or name == "cost_anomalies"), name
            mine = to_arrow(con, f"SELECT count(*) AS n FROM {name}").to_pylist()
            listed = ", ".join(f"'{a}'" for a in sorted(owned))
            theirs = to_arrow(everyone, f"SELECT count(*) AS n FROM {name} WHERE account_id IN ({listed})")
            assert mine == theirs.to_pylist(), name  # all of the tenant's rows, not only some
        for name in ("publish_log", "quarantine", INGEST_BATCHES):
            assert to_arrow(con, f"SELECT count(*) AS n FROM {name}").to_pylist() == [{"n": 0}], name
            assert to_arrow(everyone, f"SELECT count(*) AS n FROM {name}").to_pylist() != [{"n": 0}], name
        assert set(to_arrow(con, f"SELECT account_id FROM {TENANT_ACCOUNTS}").column(0).to_pylist()) == owned
    finally:
        con.close()
        everyone.close()


def test_a_tenants_dimensions_hold_only_the_keys_its_published_rows_use(lake: Warehouse) -> None:
    def keys(tenant: str | None, sql: str) -> list[str]:
        return [next(iter(r.values())) for r in run_query(lake, sql, tenant=tenant).to_pylist()]

    services = "SELECT service_name FROM dim_service ORDER BY 1"
    assert keys("team-a", services) == ["amazonec2", "amazons3"]
    assert keys("team-b", services) == ["amazonec2", "amazonrds"]
    assert keys(None, services) == ["amazonec2", "amazonrds", "amazons3"]
    assert keys("team-a", "SELECT region FROM dim_region") == ["us-east-1"]
    assert keys("team-b", "SELECT pricing_model FROM dim_pricing_model") == ["savings_plan"]
    assert keys("unassigned", "SELECT pricing_model FROM dim_pricing_model") == ["spot"]
    assert len(keys(None, "SELECT region FROM dim_region")) == 3


def test_the_cut_follows_as_of_and_only_the_views_asked_for(lake: Warehouse) -> None:
    manifest = latest_manifest(lake)
    assert manifest is not None
    sql = "SELECT DISTINCT account_id FROM normalized_billing_events ORDER BY 1"
    past = run_query(lake, sql, as_of=manifest.run_id, tenant="team-b").to_pylist()
    assert past == [{"account_id": B1}]
    con = open_lake(lake, tenant="team-a", tables=["dim_service"])
    try:  # a tenant's dimension brings the table that links it
        names = {
            r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
        }
        assert names == {"dim_service", "account_service_day_cost", TENANT_ACCOUNTS}
    finally:
        con.close()


def test_an_unknown_tenant_is_refused_before_any_view_exists(lake: Warehouse) -> None:
    with pytest.raises(UnknownTenant, match="^unknown tenant 'nobody'$"):
        run_query(lake, "SELECT 1", tenant="nobody")


def test_as_of_a_run_reads_the_anomalies_its_detection_left(tmp_path: Path) -> None:
    """The manifest is written before detection: as of a run, its own anomalies were those of the
    run before (none, for the first)."""
    made = generate(tmp_path / "bills", events=3000, days=50, tenants=1, batches=3, anomalies=3)
    wh = Warehouse(Settings(warehouse=str(tmp_path / "wh")))

    def stored(as_of: str | None = None) -> list[tuple[str, str]]:
        sql = "SELECT CAST(usage_date AS VARCHAR) AS d, service_name FROM cost_anomalies ORDER BY ALL"
        return [tuple(r.values()) for r in run_query(wh, sql, as_of=as_of).to_pylist()]

    first = ingest_and_run(wh, *made.files[:2])[1]
    after_first = stored()
    assert after_first and stored(first.run_id) == after_first
    # A run with detection off left the anomalies as they were; a later `costlake anomalies --full`,
    # which reflects the same run in two snapshots (delete, then add), is another command's.
    quiet = Warehouse(Settings(warehouse=str(tmp_path / "wh"), anomalies_on_run=False))
    third = ingest_and_run(quiet, made.files[2])[1]
    update_anomalies(wh, full=True)
    assert stored() != after_first
    assert stored(third.run_id) == after_first and stored(first.run_id) == after_first
