"""The command line as a user runs it: separate processes, exit codes, output formats."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from decimal import Decimal

from helpers import SEED, cli


def test_ingest_run_query_in_every_format(tmp_path):
    wh = tmp_path / "wh"
    assert cli(wh, "ingest", str(SEED)).returncode == 0
    ran = cli(wh, "run")
    assert ran.returncode == 0, ran.stderr
    assert "1 new batch(es)" in ran.stdout and "daily_account_cost" in ran.stdout
    sql = (
        "SELECT account_id, CAST(usage_date AS VARCHAR) AS d, total_cost_usd "
        "FROM daily_account_cost ORDER BY d, account_id"
    )
    as_csv = cli(wh, "query", sql, "--format", "csv")
    assert as_csv.stdout.splitlines() == [
        "account_id,d,total_cost_usd",
        "A1,2025-01-01,17.000000000000",
        "A2,2025-01-01,7.000000000000",
        "A1,2025-01-02,8.000000000000",
    ]
    as_json = json.loads(cli(wh, "query", sql, "--format", "json").stdout)
    assert [Decimal(r["total_cost_usd"]) for r in as_json] == [Decimal(17), Decimal(7), Decimal(8)]
    as_table = cli(wh, "query", sql)
    assert "17.000000000000" in as_table.stdout and "A2" in as_table.stdout
    again = cli(wh, "run")
    assert again.returncode == 0 and "nothing new to publish" in again.stdout
    # Two columns of one name (a self-join) keep both values, in their places; JSON, one value per
    # name, refuses them. The CSV lost a value and shifted the next under the wrong header.
    join = (
        "SELECT t.usage_date AS d, t.total_cost_usd, y.total_cost_usd FROM daily_account_cost t "
        "JOIN daily_account_cost y ON y.account_id = t.account_id AND y.usage_date = t.usage_date - 1"
    )
    assert cli(wh, "query", join, "--format", "csv").stdout.splitlines() == [
        "d,total_cost_usd,total_cost_usd",
        "2025-01-02,8.000000000000,17.000000000000",
    ]
    refused = cli(wh, "query", join, "--format", "json")
    assert refused.returncode == 1 and refused.stderr.startswith(
        "error: columns named more than once: total_cost_usd; a JSON object holds one value per name"
    )
    odd = cli(wh, "query", "SELECT 'nan'::DOUBLE AS x, [1e-12::DECIMAL(18,12)] AS l", "--format", "json")
    assert json.loads(odd.stdout) == [{"x": "nan", "l": ["0.000000000001"]}], odd.stdout


def test_bad_sql_and_bad_flags_exit_1_without_traceback(tmp_path):
    wh = tmp_path / "wh"
    for args in (
        ("query", "SELECT * FROM no_such_table"),
        ("query", "SELECT 1", "--format", "xml"),
        ("ingest", str(tmp_path / "missing.csv")),
        ("generate",),
        ("frobnicate",),
        ("anomalies", "--limit", "-1"),  # refused before detection commits, not by the listing's SQL after
    ):
        done = cli(wh, *args)
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
        assert done.stderr.startswith("error: "), done.stderr


def test_a_reversed_window_or_an_empty_run_id_is_refused_not_read_as_everything(tmp_path):
    """validate --from after --to checked no day and passed; audit verify --run "" verified every run:
    a script with swapped bounds or an unset $RUN always passed."""
    wh = tmp_path / "wh"
    assert cli(wh, "ingest", str(SEED)).returncode == 0 and cli(wh, "run").returncode == 0
    for args, message in [
        (
            ("validate", "--from", "2025-01-10", "--to", "2025-01-01"),
            "--from 2025-01-10 is after --to 2025-01-01",
        ),
        (("audit", "verify", "--run", ""), "unknown run id ''"),
    ]:
        done = cli(wh, *args)
        assert done.returncode == 1 and done.stderr.startswith(f"error: {message}"), (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1


def test_duckdb_out_of_memory_is_one_line_naming_the_setting_not_an_internal_error() -> None:
    """DuckDB out of memory (or out of temp space to spill to: it says "failed to offload") is the
    machine's limit, not a bug: exit 1 with the setting to raise, not an internal error's 3."""
    code = (
        "import duckdb; from costlake.cli import _exit_for; "
        "_exit_for(duckdb.OutOfMemoryException('Out of Memory Error: failed to offload data block\\nmore'))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: DuckDB ran out of memory or of temp space to spill (Out of Memory Error: failed to "
        "offload data block); raise duckdb_memory_limit (COSTLAKE_DUCKDB_MEMORY_LIMIT) or free space in "
        "the temp folder"
    ]


def test_a_query_out_of_memory_says_what_to_raise(tmp_path) -> None:
    """`query`'s own errors say `query failed`; out of memory adds the setting to raise."""
    wh = tmp_path / "wh"
    assert cli(wh, "ingest", str(SEED)).returncode == 0
    env = os.environ | {"COSTLAKE_DUCKDB_MEMORY_LIMIT": "20MB", "COSTLAKE_DUCKDB_THREADS": "1"}
    sql = "SELECT length(string_agg(md5(i::VARCHAR), ',')) FROM range(2000000) t(i)"
    done = subprocess.run(
        [sys.executable, "-m", "costlake", "--warehouse", str(wh), "query", sql],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: query failed: Out of Memory Error") and line.endswith(
        "; raise duckdb_memory_limit (COSTLAKE_DUCKDB_MEMORY_LIMIT) or free space in the temp folder"
    )


def test_help_explains_commands(tmp_path):
    done = cli(tmp_path / "wh", "--help")
    assert done.returncode == 0
    for command in ("ingest", "run", "query", "generate", "tenants", "demo"):
        assert command in done.stdout


def test_tenants_load_assigns_owners_and_keeps_the_rest_unassigned(tmp_path, write_csv):
    wh = tmp_path / "wh"
    cli(wh, "ingest", str(SEED))
    cli(wh, "run")
    owners = write_csv(
        "owners.csv",
        [["A1", "tenant-x", "payments-prod"], ["A9", "tenant-y", ""]],
        header=("account_id", "tenant_id", "account_name"),
    )
    done = cli(wh, "tenants", "load", str(owners))
    assert done.returncode == 0, done.stderr
    assert "1 account(s) updated, 1 not seen yet added" in done.stdout
    rows = cli(
        wh,
        "query",
        "SELECT account_id, tenant_id, account_name FROM dim_account ORDER BY 1",
        "--format",
        "csv",
    ).stdout.splitlines()
    assert rows == [
        "account_id,tenant_id,account_name",
        "A1,tenant-x,payments-prod",
        "A2,unassigned,",
        "A9,tenant-y,",
    ]
    clash = write_csv(
        "clash.csv", [["A1", "t1", ""], ["A1", "t2", ""]], header=("account_id", "tenant_id", "account_name")
    )
    refused = cli(wh, "tenants", "load", str(clash))
    assert refused.returncode == 1 and "row 2, column tenant_id" in refused.stderr


def test_generate_writes_files_with_a_summary(tmp_path):
    done = cli(
        tmp_path / "wh",
        "generate",
        str(tmp_path / "gen"),
        "--events",
        "500",
        "--days",
        "10",
        "--batches",
        "2",
        "--seed",
        "3",
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "gen").iterdir()) == [
        "billing_batch_001.csv",
        "billing_batch_002.csv",
        "tenants.csv",
    ]
    assert "rows in 2 file(s)" in done.stdout
    refused = cli(tmp_path / "wh", "generate", str(tmp_path / "gen2"), "--batches", "0")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr


def test_warehouse_from_environment(tmp_path):
    import os
    import subprocess
    import sys

    env = dict(os.environ, COSTLAKE_WAREHOUSE=str(tmp_path / "from-env"))
    done = subprocess.run(
        [sys.executable, "-m", "costlake", "ingest", str(SEED)],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "from-env" / "catalog.db").exists()


def test_query_as_a_tenant_shows_only_its_accounts(tmp_path, write_csv):
    """Team a owns A1 and A2, team b owns B1; both have a spike, so both have anomalies."""
    wh = tmp_path / "wh"
    start, rows = dt.date(2025, 1, 1), []
    for i in range(40):
        day = (start + dt.timedelta(days=i)).isoformat()
        for account, level, spike in (("A1", 300, 33), ("A2", 90, None), ("B1", 150, 30)):
            cost = level * 5 if i == spike else level + (i * 7) % 5
            rows.append([f"{account}-{i}", day, account, "AmazonEC2", str(cost), day])
    owners = write_csv(
        "owners.csv",
        [["A1", "team-a", ""], ["A2", "team-a", ""], ["B1", "team-b", ""]],
        header=("account_id", "tenant_id", "account_name"),
    )
    for args in (("ingest", str(write_csv("bill.csv", rows))), ("run",), ("tenants", "load", str(owners))):
        done = cli(wh, *args)
        assert done.returncode == 0, (args, done.stderr)

    def query(sql: str, *tenant: str) -> list[str]:
        done = cli(wh, "query", sql, "--format", "csv", *tenant)
        assert done.returncode == 0, done.stderr
        return done.stdout.splitlines()[1:]

    expected = {
        "daily_account_cost": (["A1", "A2"], ["B1"]),
        "raw_billing_events": (["A1", "A2"], ["B1"]),
        "cost_anomalies": (["A1"], ["B1"]),  # A2 has no spike
    }
    for table, (team_a, team_b) in expected.items():
        sql = f"SELECT DISTINCT account_id FROM {table} ORDER BY 1"
        assert query(sql, "--tenant", "team-a") == team_a
        assert query(sql, "--tenant", "team-b") == team_b
        assert query(sql) == team_a + team_b
    published = "SELECT count(*) AS n FROM publish_log"
    assert query(published, "--tenant", "team-a") == ["0"] and query(published) != ["0"]
    # The tables the docs name for a tenant: its accounts, and no batches (they failed: the copy of
    # the lake's tables collided with these in-memory ones)
    assert query("SELECT account_id FROM tenant_accounts ORDER BY 1", "--tenant", "team-a") == ["A1", "A2"]
    assert query("SELECT count(*) FROM ingest_batches", "--tenant", "team-a") == ["0"]
    # The views' text lists the data files of every tenant's days and batches: a tenant sees none.
    views = "SELECT count(*) FROM duckdb_views() WHERE sql ILIKE '%parquet%' OR sql ILIKE '%batch_id=%'"
    assert query(views, "--tenant", "team-a") == ["0"] and query(views) != ["0"]
    unknown = cli(wh, "query", "SELECT 1", "--tenant", "team-c")
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert unknown.stderr.splitlines() == ["error: unknown tenant 'team-c'"]


def test_version_is_shown_whatever_else_the_command_line_holds(tmp_path):
    """An eager option: it answers before the settings are read or a command runs, so a bad setting
    or a missing warehouse does not hide it."""
    from importlib.metadata import version

    from costlake import __version__

    assert __version__ == version("costlake")  # the package's, as pyproject.toml gives it
    for args in (["--version"], ["--version", "run"], ["--engine", "nope", "--version"]):
        shown = cli(tmp_path / "missing", *args)
        assert (shown.returncode, shown.stdout, shown.stderr) == (0, f"costlake {__version__}\n", ""), args
    assert not (tmp_path / "missing").exists()


def test_help_imports_no_data_library() -> None:
    """`costlake --help`, `--version` and `COMMAND --help` touch no data: pyarrow, numpy, DuckDB,
    PyIceberg and the service's libraries are imported on first use only (each costs tens to hundreds
    of ms), and so are the settings (pydantic-settings was a third of `--help`'s 0.3 s; typer itself
    imports pydantic)."""
    heavy = {"pyarrow", "numpy", "duckdb", "pyiceberg", "fastapi", "uvicorn", "boto3", "faiss"}
    heavy |= {"pydantic_settings", "sqlalchemy"}
    commands = (["ingest"], ["run"], ["anomalies"], ["maintain"], ["serve"], ["tenants"], ["explain"])
    for args in (["--help"], ["--version"], *([*c, "--help"] for c in commands)):
        shown = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "costlake", *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert shown.returncode == 0, shown.stderr[-500:]
        loaded = {line.rpartition("|")[2].strip().split(".")[0] for line in shown.stderr.splitlines()}
        assert not heavy & loaded, (args, sorted(heavy & loaded))
