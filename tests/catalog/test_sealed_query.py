"""`costlake query` runs one SELECT over the lake and nothing else: no file outside the lake, no
write, no setting; and a tenant's query cannot read the shared data files by path."""

from __future__ import annotations

from pathlib import Path

import pytest

from costlake.catalog.views import run_query
from costlake.errors import InputError
from costlake.lake.warehouse import Warehouse
from costlake.tables import DAILY_ACCOUNT
from two_tenants import A1, A2, B1


def _a_data_file(lake: Warehouse) -> str:
    return lake.data_files(DAILY_ACCOUNT)[0]


@pytest.mark.parametrize(
    ("sql", "error"),
    [
        ("COPY (SELECT 1) TO '{tmp}/out.csv'", "not COPY"),
        ("ATTACH '{tmp}/other.db'", "not ATTACH"),
        ("SET enable_external_access = true", "not SET"),
        ("INSTALL httpfs", "not "),
        ("SELECT 1; SELECT 2", "not SELECT, SELECT"),
        ("CREATE TABLE t AS SELECT 1", "not CREATE"),
        ("SELECT * FROM read_text('/etc/hostname')", "disabled by configuration"),
        ("SELECT * FROM read_csv('{tmp}/x.csv')", "disabled by configuration"),
        ("PIVOT daily_account_cost ON account_id USING sum(total_cost_usd)", "a PIVOT must list its values"),
    ],
)
def test_only_one_select_over_the_lake_runs(lake: Warehouse, tmp_path: Path, sql: str, error: str) -> None:
    (tmp_path / "x.csv").write_text("a\n1\n")
    with pytest.raises(InputError, match=error):
        run_query(lake, sql.format(tmp=tmp_path))
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "other.db").exists()


def test_a_pivot_that_lists_its_values_runs(lake: Warehouse) -> None:
    sql = f"PIVOT daily_account_cost ON account_id IN ('{A1}') USING count(*) GROUP BY usage_date"
    assert A1 in run_query(lake, sql).column_names


def test_the_operator_still_reads_the_lakes_own_files(lake: Warehouse) -> None:
    rows = run_query(lake, f"SELECT count(*) AS n FROM read_parquet('{_a_data_file(lake)}')").to_pylist()
    assert rows[0]["n"] > 0


def test_a_tenant_cannot_read_the_shared_data_files_by_path(lake: Warehouse) -> None:
    path = _a_data_file(lake)
    with pytest.raises(InputError, match="disabled by configuration"):
        run_query(lake, f"SELECT DISTINCT account_id FROM read_parquet('{path}')", tenant="team-a")
    mixed = f"SELECT account_id FROM read_parquet('{path}') UNION SELECT account_id FROM daily_account_cost"
    with pytest.raises(InputError, match="disabled by configuration"):
        run_query(lake, mixed, tenant="team-a")
    own = run_query(lake, "SELECT DISTINCT account_id FROM main.daily_account_cost", tenant="team-a")
    assert set(own.column("account_id").to_pylist()) == {A1, A2}
    assert B1 not in str(run_query(lake, "SELECT sql FROM duckdb_views()", tenant="team-a").to_pylist())


@pytest.mark.parametrize(
    "table", ["daily_account_cost", "main.daily_account_cost", "memory.main.daily_account_cost"]
)
def test_a_tenant_names_its_tables_in_every_way_the_operator_can(lake: Warehouse, table: str) -> None:
    own = run_query(lake, f"SELECT DISTINCT account_id FROM {table}", tenant="team-a")
    assert set(own.column("account_id").to_pylist()) == {A1, A2}
    assert run_query(lake, f"SELECT DISTINCT account_id FROM {table}").num_rows > 2
