"""Athena, Trino and Spark DDL for the lake: exact statements, types, quoting, every table once."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import duckdb
import pytest
from pyiceberg.types import DateType, StringType, TimestamptzType

from costlake.catalog.ddl import DIALECTS, athena_type, statements
from costlake.catalog.refs import TableRef, table_refs
from costlake.lake.warehouse import Warehouse
from costlake.settings import Settings
from costlake.tables import DAILY_ACCOUNT, DIM_REGION, MONEY, NORMALIZED, TABLES, TableDef

BASE = "s3://lake/warehouse/costlake"
META = "00003-4f2a.metadata.json"


def fake_ref(tdef: TableDef, base: str = BASE) -> TableRef:
    location = f"{base}/{tdef.name}"
    return TableRef(tdef.name, tdef, location, f"{location}/metadata/{META}")


FAKE = [fake_ref(tdef) for tdef in TABLES.values()]


def sql(entries: list[str]) -> list[str]:
    """The statements, without the `--` comment entries."""
    return [entry for entry in entries if not entry.startswith("--")]


def comments(entries: list[str]) -> str:
    notes = [entry for entry in entries if entry.startswith("--")]
    assert all(line.startswith("-- ") for note in notes for line in note.splitlines())
    return "\n".join(notes)


def naming(entries: list[str], table: str) -> str:
    """The one statement that names `table`."""
    (found,) = [s for s in sql(entries) if f".{table} (" in s or f"'{table}'" in s or f".{table}'" in s]
    return found


# -- Athena -------------------------------------------------------------------------------------------
def test_athena_partitioned_table() -> None:
    out = statements("athena", FAKE)
    assert sql(out)[0] == "CREATE DATABASE IF NOT EXISTS costlake;"
    assert naming(out, "daily_account_cost") == (
        "CREATE TABLE IF NOT EXISTS costlake.daily_account_cost (\n"
        "  account_id string,\n"
        "  usage_date date,\n"
        "  total_cost_usd decimal(38,12),\n"
        "  effective_cost_usd decimal(38,12),\n"
        "  event_count bigint,\n"
        "  service_count bigint,\n"
        "  data_complete boolean,\n"
        "  published_at timestamp,\n"
        "  run_id string\n"
        ")\n"
        "PARTITIONED BY (usage_date)\n"
        "LOCATION 's3://lake/warehouse/costlake/daily_account_cost'\n"
        "TBLPROPERTIES ('table_type'='ICEBERG');"
    )


def test_athena_unpartitioned_table_and_partition_columns() -> None:
    out = statements("athena", FAKE)
    assert naming(out, "dim_region") == (
        "CREATE TABLE IF NOT EXISTS costlake.dim_region (\n"
        "  region string,\n"
        "  first_usage_date date,\n"
        "  last_usage_date date\n"
        ")\n"
        "LOCATION 's3://lake/warehouse/costlake/dim_region'\n"
        "TBLPROPERTIES ('table_type'='ICEBERG');"
    )
    for tdef in TABLES.values():
        partitioned = re.search(r"\nPARTITIONED BY \((\w+)\)\n", naming(out, tdef.name))
        assert (partitioned.group(1) if partitioned else None) == tdef.partition_by, tdef.name


def test_money_is_decimal_38_12_in_every_table() -> None:
    assert athena_type(MONEY) == "decimal(38,12)"
    out = statements("athena", FAKE)
    money = [(t.name, c) for t in TABLES.values() for c, kind in t.columns if kind == MONEY]
    assert {c for _, c in money} >= {"billed_cost", "effective_cost", "total_cost_usd", "effective_cost_usd"}
    for table, column in money:
        assert f"\n  {column} decimal(38,12)" in naming(out, table)
    assert "double" not in "\n".join(sql(out)) and "float" not in "\n".join(sql(out))


def test_athena_says_what_create_table_does_and_what_glue_means() -> None:
    plain = comments(statements("athena", FAKE))
    assert "new, empty table" in plain and "does not adopt" in plain
    assert "Glue catalog" in plain and "already registered" not in plain
    glue = comments(statements("athena", FAKE, glue=True))
    assert "already registered in the Glue database `costlake`" in glue
    assert "fresh Glue database" in glue and "new, empty table" in glue
    assert "not s3://" not in glue
    local = comments(statements("athena", [fake_ref(DIM_REGION, "file:///tmp/wh/costlake")]))
    assert "1 of 1 table locations are not s3:// URIs" in local


# -- column lists ---------------------------------------------------------------------------------------
CREATE = re.compile(r"CREATE TABLE IF NOT EXISTS (\w+)\.(\w+) \(\n(.*?)\n\)\n", re.DOTALL)


def test_every_column_of_every_table_once_in_order() -> None:
    out = sql(statements("athena", FAKE))
    created = {}
    for statement in out[1:]:
        match = CREATE.match(statement)
        assert match, statement
        database, table, body = match.groups()
        assert database == "costlake" and table not in created
        created[table] = [tuple(line.strip().split(" ")) for line in body.split(",\n")]
    assert list(created) == list(TABLES)
    for name, tdef in TABLES.items():
        assert created[name] == [(c, athena_type(kind)) for c, kind in tdef.columns], name
        assert len({c for c, _ in created[name]}) == len(tdef.columns)


DUCKDB_TYPE = {"string": "VARCHAR", "bigint": "BIGINT", "boolean": "BOOLEAN", "date": "DATE"}
DUCKDB_TYPE |= {"timestamp": "TIMESTAMP", "decimal(38,12)": "DECIMAL(38,12)"}
DUCKDB_TYPE |= {"decimal(38,4)": "DECIMAL(38,4)"}


def test_column_lists_parse_as_sql_with_the_declared_types() -> None:
    """An independent parser (DuckDB accepts these Hive type names) reads each column list back."""
    con = duckdb.connect()
    for statement in sql(statements("athena", FAKE))[1:]:
        match = CREATE.match(statement)
        assert match
        _, table, body = match.groups()
        con.execute(f"CREATE TABLE {table} ({body})")
        described = [(row[0], row[1]) for row in con.execute(f"DESCRIBE {table}").fetchall()]
        expected = [(c, DUCKDB_TYPE[athena_type(kind)]) for c, kind in TABLES[table].columns]
        assert described == expected, table


# -- Trino --------------------------------------------------------------------------------------------
def test_trino_statements() -> None:
    out = statements("trino", FAKE)
    assert sql(out)[0] == "CREATE SCHEMA IF NOT EXISTS iceberg.costlake;"
    assert naming(out, "daily_account_cost") == (
        "CALL iceberg.system.register_table(\n"
        "  schema_name => 'costlake',\n"
        "  table_name => 'daily_account_cost',\n"
        "  table_location => 's3://lake/warehouse/costlake/daily_account_cost',\n"
        f"  metadata_file_name => '{META}'\n"
        ");"
    )
    assert naming(statements("trino", FAKE, catalog_name="lake", database="finops"), "dim_region") == (
        "CALL lake.system.register_table(\n"
        "  schema_name => 'finops',\n"
        "  table_name => 'dim_region',\n"
        "  table_location => 's3://lake/warehouse/costlake/dim_region',\n"
        f"  metadata_file_name => '{META}'\n"
        ");"
    )
    notes = comments(out)
    assert "iceberg.register-table-procedure.enabled=true" in notes and "read-only" in notes
    assert "already registered" in comments(statements("trino", FAKE, glue=True))


def test_trino_registers_every_table_once() -> None:
    out = sql(statements("trino", FAKE))
    assert sum(s.startswith("CREATE SCHEMA") for s in out) == 1
    registered = re.findall(r"table_name => '(\w+)'", "\n".join(out))
    assert registered == list(TABLES)


def test_trino_needs_the_metadata_file_inside_the_table_location() -> None:
    moved = TableRef("dim_region", DIM_REGION, f"{BASE}/dim_region", f"{BASE}/elsewhere/{META}")
    with pytest.raises(ValueError, match="register_table looks for it"):
        statements("trino", [moved])


# -- Spark --------------------------------------------------------------------------------------------
def test_spark_statements() -> None:
    out = statements("spark", FAKE)
    assert sql(out)[0] == "CREATE NAMESPACE IF NOT EXISTS iceberg.costlake;"
    assert naming(out, "daily_account_cost") == (
        "CALL iceberg.system.register_table(\n"
        "  table => 'costlake.daily_account_cost',\n"
        f"  metadata_file => 's3://lake/warehouse/costlake/daily_account_cost/metadata/{META}'\n"
        ");"
    )
    assert naming(out, "dim_region") == (
        "CALL iceberg.system.register_table(\n"
        "  table => 'costlake.dim_region',\n"
        f"  metadata_file => 's3://lake/warehouse/costlake/dim_region/metadata/{META}'\n"
        ");"
    )
    assert re.findall(r"table => 'costlake\.(\w+)'", "\n".join(sql(out))) == list(TABLES)


# -- quoting and errors ---------------------------------------------------------------------------------
def test_a_quote_in_a_location_is_escaped_per_dialect() -> None:
    ref = fake_ref(DAILY_ACCOUNT, "s3://lake/o'brien\\x")
    athena = naming(statements("athena", [ref]), "daily_account_cost")
    # HiveQL-based Athena DDL and Spark: backslash escapes (HiveQL reads a doubled quote as nothing).
    assert "\nLOCATION 's3://lake/o\\'brien\\\\x/daily_account_cost'\n" in athena
    spark = naming(statements("spark", [ref]), "daily_account_cost")
    assert f"metadata_file => 's3://lake/o\\'brien\\\\x/daily_account_cost/metadata/{META}'" in spark
    # Trino: standard SQL, the quote doubled and the backslash an ordinary character.
    trino = naming(statements("trino", [ref]), "daily_account_cost")
    assert "table_location => 's3://lake/o''brien\\x/daily_account_cost'" in trino


def test_identifiers_are_quoted_when_they_need_it() -> None:
    odd = TableDef("user", (("date", DateType()), ("user", StringType())), "date", ("date",), "odd names")
    ref = TableRef("user", odd, f"{BASE}/user", f"{BASE}/user/metadata/{META}")
    athena = sql(statements("athena", [ref], database="cost-lake"))
    assert athena[0] == "CREATE DATABASE IF NOT EXISTS `cost-lake`;"
    assert athena[1].startswith(
        "CREATE TABLE IF NOT EXISTS `cost-lake`.`user` (\n  `date` date,\n  `user` string\n)"
    )
    assert "\nPARTITIONED BY (`date`)\n" in athena[1]
    trino = sql(statements("trino", [ref], database="table", catalog_name='my"cat'))
    assert trino[0] == 'CREATE SCHEMA IF NOT EXISTS "my""cat"."table";'
    assert trino[1].startswith('CALL "my""cat".system.register_table(\n  schema_name => \'table\',')
    spark = sql(statements("spark", [ref], database="cost-lake"))
    assert spark[0] == "CREATE NAMESPACE IF NOT EXISTS iceberg.`cost-lake`;"
    assert "  table => '`cost-lake`.user',\n" in spark[1]


def test_control_characters_and_unknown_types_are_refused() -> None:
    with pytest.raises(ValueError, match="control characters"):
        statements("trino", [fake_ref(DIM_REGION, "s3://lake/a\nb")])
    with pytest.raises(ValueError, match="control characters"):
        statements("athena", FAKE, database="cost\x00lake")
    with pytest.raises(ValueError, match="no Athena Iceberg DDL type"):
        athena_type(TimestamptzType())


def test_unknown_dialect_lists_the_choices() -> None:
    with pytest.raises(ValueError, match=r"unknown dialect 'hive': choose one of athena, trino, spark"):
        statements("hive", FAKE)
    assert DIALECTS == ("athena", "trino", "spark")


def test_every_entry_is_a_comment_or_one_statement() -> None:
    for dialect in DIALECTS:
        for glue in (False, True):
            out = statements(dialect, FAKE, glue=glue)
            assert out[0].startswith("-- ")
            for statement in sql(out):
                assert statement.endswith(";") and statement.count(";") == 1, statement


# -- a real warehouse -----------------------------------------------------------------------------------
def test_refs_from_a_real_warehouse(settings: Settings) -> None:
    """`settings` (conftest) is `Settings(warehouse=<tmp_path>/warehouse)`."""
    wh = Warehouse(settings)
    wh.ensure_tables()
    refs = table_refs(wh)
    assert [r.name for r in refs] == list(TABLES) and [r.tdef for r in refs] == list(TABLES.values())
    for ref in refs:
        table = wh.table(ref.tdef)
        assert (ref.location, ref.metadata_location) == (table.location(), table.metadata_location)
        assert ref.metadata_location.startswith(ref.location + "/metadata/")
        assert ref.metadata_location.endswith(".metadata.json")

    region = next(r for r in refs if r.name == "dim_region")
    file_name = region.metadata_location.rsplit("/", 1)[1]
    assert f"  metadata_file_name => '{file_name}'\n" in naming(statements("trino", refs), "dim_region")
    spark = naming(statements("spark", refs), "dim_region")
    assert f"  metadata_file => '{region.metadata_location}'\n" in spark
    athena = statements("athena", refs)
    assert f"\nLOCATION '{region.location}'\n" in naming(athena, "dim_region")
    assert f"{len(refs)} of {len(refs)} table locations are not s3:// URIs" in comments(athena)
    assert [CREATE.match(s) is not None for s in sql(athena)[1:]] == [True] * len(TABLES)

    # Another process commits (a new metadata file); refs from a warehouse that cached the table follow it.
    with Warehouse(settings).table(DIM_REGION).transaction() as tx:
        tx.set_properties({"costlake.test": "1"})
    assert wh.table(DIM_REGION).metadata_location == region.metadata_location  # the stale cache
    after = next(r for r in table_refs(wh) if r.name == "dim_region")
    assert after.metadata_location != region.metadata_location
    assert after.metadata_location.startswith(after.location + "/metadata/")


# -- Spark's own parser -------------------------------------------------------------------------------
@pytest.mark.slow
def test_spark_parses_the_statements_and_reads_the_literals_back() -> None:
    # make test installs pyspark and Java (make java): a missing one is a failure, not a skip.
    assert shutil.which("java"), "the Spark tests need Java 17+: run `make java`"
    from pyspark.sql import SparkSession

    ref = fake_ref(DAILY_ACCOUNT, "s3://lake/o'brien\\x")
    spark = SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false").getOrCreate()
    try:
        parser = spark._jsparkSession.sessionState().sqlParser()
        namespace, call = sql(statements("spark", [ref], database="cost-lake"))
        created = parser.parsePlan(namespace.rstrip(";")).toString()
        plan = parser.parsePlan(call.rstrip(";")).toString()
    finally:
        spark.stop()
    assert "UnresolvedNamespace [iceberg, cost-lake]" in created
    assert "table => `cost-lake`.daily_account_cost" in plan
    assert re.search(re.escape(f"metadata_file => {ref.metadata_location}") + r"[,)]", plan)


def test_cli_prints_the_ddl_of_every_table(tmp_path) -> None:
    from helpers import cli, empty_warehouse

    done = cli(empty_warehouse(tmp_path / "wh"), "catalog", "ddl", "--dialect", "athena")
    assert done.returncode == 0, done.stderr
    for name in TABLES:
        assert f"CREATE TABLE IF NOT EXISTS costlake.{name} (" in done.stdout
    refused = cli(tmp_path / "wh", "catalog", "ddl", "--dialect", "oracle")
    assert refused.returncode == 1 and "unknown dialect 'oracle'" in refused.stderr


def test_a_run_killed_halfway_leaves_the_stage_tables_registered_as_the_last_run_left_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from costlake.catalog.views import snapshot_view
    from helpers import SEED, cli, ingest_and_run

    root = tmp_path / "wh"
    wh = Warehouse(Settings(warehouse=str(root)))
    ingest_and_run(wh, SEED)
    more = tmp_path / "more.csv"
    more.write_text(SEED.read_text().splitlines()[0] + "\ne9,2025-01-02,A2,EC2,1,2025-01-04\n")
    assert cli(root, "ingest", str(more)).returncode == 0
    monkeypatch.setenv("COSTLAKE_CRASH_AT", f"after_commit:{NORMALIZED.name}")
    assert cli(root, "run").returncode == 86  # stage 1 committed, stages 2 and 3 not
    monkeypatch.delenv("COSTLAKE_CRASH_AT")

    wh = Warehouse(wh.settings)
    published = snapshot_view(wh)
    refs = {r.name: r for r in table_refs(wh)}
    stage1 = refs[NORMALIZED.name]
    current = wh.table(NORMALIZED).metadata_location
    assert stage1.metadata_location != current and not stage1.note
    kept = json.loads(Path(stage1.metadata_location.removeprefix("file://")).read_text())
    now = wh.table(NORMALIZED).current_snapshot()
    assert now is not None and kept["current-snapshot-id"] == published[NORMALIZED.name] != now.snapshot_id
    assert refs[DAILY_ACCOUNT.name].metadata_location == wh.table(DAILY_ACCOUNT).metadata_location
    printed = cli(root, "catalog", "ddl", "--dialect", "spark")
    assert printed.returncode == 0 and f"metadata_file => '{stage1.metadata_location}'" in printed.stdout

    # Its older metadata files gone (removed by hand): the current one, said so.
    Path(stage1.metadata_location.removeprefix("file://")).unlink()
    refs = {r.name: r for r in table_refs(Warehouse(wh.settings))}
    assert (
        refs[NORMALIZED.name].metadata_location == current and "no longer kept" in refs[NORMALIZED.name].note
    )
    printed = cli(root, "catalog", "ddl", "--dialect", "trino")
    assert f"-- {NORMALIZED.name}: its metadata file as of the latest finished run is no longer kept" in (
        printed.stdout
    )


@pytest.mark.parametrize("dialect", ["trino", "spark"])
def test_a_registration_says_maintain_removes_what_it_points_at(dialect: str) -> None:
    notes = comments(statements(dialect, FAKE))
    assert "`costlake maintain` removes the metadata files and snapshots it no longer keeps" in notes
