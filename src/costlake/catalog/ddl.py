"""SQL that shows the lake's Iceberg tables to Athena, Trino or Spark.

Which one to use:

* **The lake runs on the Glue catalog** (`catalog = "glue"`): run nothing. Every table is already in the
  Glue database `costlake`, and Athena, Trino (Iceberg connector with `iceberg.catalog.type=glue`) and
  Spark (Iceberg's `GlueCatalog`) read it as it is, each new commit included.
* **`athena`**: `CREATE DATABASE` plus one `CREATE TABLE ... TBLPROPERTIES ('table_type'='ICEBERG')` per
  table. Athena's CREATE TABLE makes a *new, empty* Iceberg table with the lake's columns and
  partitioning; it does not adopt the metadata already at LOCATION. Use it to set up a fresh Glue
  database with the lake's schema, not to expose an existing warehouse: for that, run costlake on the
  Glue catalog, or register each table's current metadata file in Glue (an Iceberg Glue catalog's
  `register_table`, e.g. the Spark statements below run against a `GlueCatalog`).
* **`trino`**: `CALL <catalog>.system.register_table(...)` adopts each table's current metadata file
  into a Trino Iceberg catalog, which must set `iceberg.register-table-procedure.enabled=true`.
* **`spark`**: Iceberg's Spark procedure `CALL <catalog>.system.register_table(...)` does the same for
  a Spark Iceberg catalog.

A registration copies the table pointer as it is now; for the three stage tables, the pointer as
the latest finished run left them (`refs.table_refs`), as `costlake query` reads them. The other catalog
keeps pointing at that metadata file while costlake goes on committing through its own catalog, so
later runs stay invisible there until the table is unregistered and registered again. Keep such a
catalog read-only: Iceberg warns that one table registered in two catalogs "can lead to missing
updates, loss of data, and table corruption"
(https://iceberg.apache.org/docs/latest/spark-procedures/#register_table).

Everything here is pure: the caller passes the tables (`refs.table_refs` reads them from a warehouse) and
prints or runs the statements. An entry of `statements()` that starts with `--` is a comment for the
reader (a runner skips it); every other entry is one complete statement ending in `;`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from pyiceberg.types import (
    BinaryType,
    BooleanType,
    DateType,
    DecimalType,
    DoubleType,
    FloatType,
    IcebergType,
    IntegerType,
    LongType,
    StringType,
    TimestampType,
)

from costlake.catalog.refs import TableRef
from costlake.tables import NAMESPACE

DIALECTS = ("athena", "trino", "spark")


def _keywords(text: str) -> frozenset[str]:
    return frozenset(text.split())


def statements(
    dialect: str,
    tables: Sequence[TableRef],
    *,
    database: str = NAMESPACE,
    catalog_name: str = "iceberg",
    glue: bool = False,
) -> list[str]:
    """The statements (and leading `--` comment entries) that show `tables` to `dialect`.

    `database` is the Athena database / Trino schema / Spark namespace to use; `catalog_name` the Trino
    or Spark catalog (Athena ignores it); `glue` says the lake itself runs on the Glue catalog, so its
    tables are already in the Glue database `costlake` (the output says so).
    """
    builders: dict[str, Callable[[Sequence[TableRef], str, str, bool], list[str]]] = {
        "athena": _athena,
        "trino": _trino,
        "spark": _spark,
    }
    build = builders.get(dialect)
    if build is None:
        raise ValueError(f"unknown dialect {dialect!r}: choose one of {', '.join(DIALECTS)}")
    out = build(tables, database, catalog_name, glue)
    noted = [f"{ref.name}: {ref.note}." for ref in tables if ref.note]
    return out[:1] + [_comment(noted)] + out[1:] if noted else out


# -- Athena -----------------------------------------------------------------------------------------
# Syntax, from "Create Iceberg tables" (https://docs.aws.amazon.com/athena/latest/ug/
# querying-iceberg-creating-tables.html):
#   CREATE TABLE [db_name.]table_name (col_name data_type [COMMENT col_comment] [, ...] )
#     [PARTITIONED BY (col_name | transform, ... )]
#     LOCATION 's3://amzn-s3-demo-bucket/your-folder/'
#     TBLPROPERTIES ( 'table_type' ='ICEBERG' [, property_name=property_value] )
# "Athena CREATE TABLE creates an Iceberg table with no data"; the partition column is declared among
# the columns first and named without its type in PARTITIONED BY (an identity partition). That
# synopsis does not show IF NOT EXISTS; Athena's general CREATE TABLE synopsis has it, and it is what
# makes re-running this script harmless.
# CREATE {DATABASE|SCHEMA} [IF NOT EXISTS] database_name: https://docs.aws.amazon.com/athena/latest/ug/
# create-database.html.
# Types: "Supported data types for Iceberg tables in Athena" (.../querying-iceberg-supported-data-types.
# html): long -> bigint, decimal(P, S) -> decimal(P, S), string -> string, date, timestamp, boolean; only
# timestamp without time zone is supported in Athena's Iceberg DDL.
# Quoting: "Athena DDL is based on HiveQL DDL" (.../ddl-sql-reference.html). Identifiers that are DDL
# reserved keywords go in backticks (.../reserved-words.html); string literals follow HiveQL's lexer
# (apache/hive HiveLexer.g, StringLiteral), where a backslash escapes the next character and `'a''b'`
# is one token that BaseSemanticAnalyzer.unescapeSQLString reads as "ab": a doubled quote would silently
# drop the quote.

_ATHENA_DDL_RESERVED = _keywords(
    """
    ALL ALTER AND ARRAY AS AUTHORIZATION BETWEEN BIGINT BINARY BOOLEAN BOTH BY CASE CASHE CAST CHAR
    COLUMN CONF CONSTRAINT COMMIT CREATE CROSS CUBE CURRENT CURRENT_DATE CURRENT_TIMESTAMP CURSOR
    DATABASE DATE DAYOFWEEK DECIMAL DELETE DESCRIBE DISTINCT DIV DOUBLE DROP ELSE END EXCHANGE EXISTS
    EXTENDED EXTERNAL EXTRACT FALSE FETCH FLOAT FLOOR FOLLOWING FOR FOREIGN FROM FULL FUNCTION GRANT
    GROUP GROUPING HAVING IF IMPORT IN INNER INSERT INT INTEGER INTERSECT INTERVAL INTO IS JOIN LATERAL
    LEFT LESS LIKE LOCAL MACRO MAP MORE NONE NOT NULL NUMERIC OF ON ONLY OR ORDER OUT OUTER OVER
    PARTIALSCAN PARTITION PERCENT PRECEDING PRECISION PRESERVE PRIMARY PROCEDURE RANGE READS REDUCE
    REGEXP REFERENCES REVOKE RIGHT RLIKE ROLLBACK ROLLUP ROW ROWS SELECT SET SMALLINT START TABLE
    TABLESAMPLE THEN TIME TIMESTAMP TO TRANSFORM TRIGGER TRUE TRUNCATE UNBOUNDED UNION UNIQUEJOIN UPDATE
    USER USING UTC_TMESTAMP VALUES VARCHAR VIEWS WHEN WHERE WINDOW WITH
    """
)

_ATHENA_TYPES: dict[type[IcebergType], str] = {
    BooleanType: "boolean",
    IntegerType: "int",
    LongType: "bigint",
    FloatType: "float",
    DoubleType: "double",
    StringType: "string",
    BinaryType: "binary",
    DateType: "date",
    TimestampType: "timestamp",
}


def athena_type(kind: IcebergType) -> str:
    """The Athena DDL type of an Iceberg column type (money: `decimal(38,12)`)."""
    if isinstance(kind, DecimalType):
        return f"decimal({kind.precision},{kind.scale})"
    name = _ATHENA_TYPES.get(type(kind))
    if name is None:
        raise ValueError(f"Iceberg type {kind} has no Athena Iceberg DDL type")
    return name


def _athena(tables: Sequence[TableRef], database: str, catalog_name: str, glue: bool) -> list[str]:
    notes = []
    if glue:
        notes += [
            f"The lake's tables are already registered in the Glue database `{NAMESPACE}`: Athena reads "
            "them directly, nothing below needs to run.",
            "These statements are for a fresh Glue database only.",
        ]
    notes += [
        "Athena's CREATE TABLE for Iceberg creates a new, empty table: it does not adopt the table "
        "metadata already at LOCATION.",
        'To query the lake\'s existing tables, run costlake on the Glue catalog (catalog = "glue") or '
        "register each table's metadata file in Glue.",
    ]
    off_s3 = sum(1 for ref in tables if not ref.location.startswith("s3://"))
    if off_s3:
        notes.append(f"{off_s3} of {len(tables)} table locations are not s3:// URIs, which Athena needs.")
    db = _athena_ident(database)
    out = [_comment(notes), f"CREATE DATABASE IF NOT EXISTS {db};"]
    for ref in tables:
        columns = ",\n".join(
            f"  {_athena_ident(name)} {athena_type(kind)}" for name, kind in ref.tdef.columns
        )
        lines = [f"CREATE TABLE IF NOT EXISTS {db}.{_athena_ident(ref.name)} (", columns, ")"]
        partition = ref.tdef.partition_by
        if partition is not None:
            if partition not in ref.tdef.column_names:
                raise ValueError(f"{ref.name}: partition column {partition!r} is not a column")
            lines.append(f"PARTITIONED BY ({_athena_ident(partition)})")
        lines.append(f"LOCATION {_backslash_literal(ref.location)}")
        lines.append("TBLPROPERTIES ('table_type'='ICEBERG');")
        out.append("\n".join(lines))
    return out


# -- Trino ------------------------------------------------------------------------------------------
# Iceberg connector, "Register table" (https://trino.io/docs/current/connector/iceberg.html):
#   CALL example.system.register_table(schema_name => 'testdb', table_name => 'customer_orders',
#     table_location => 'hdfs://.../customer_orders-581f...',
#     metadata_file_name => '00003-409702ba-4735-4645-8f14-09537cc0b2c8.metadata.json')
# metadata_file_name is a bare file name inside `<table_location>/metadata/`; without it Trino guesses
# the newest file. The procedure is disabled unless `iceberg.register-table-procedure.enabled=true`;
# `system.unregister_table(schema_name => ..., table_name => ...)` drops the entry, not the data.
# String literals are standard SQL (a quote is doubled; a backslash is an ordinary character);
# reserved keywords used as identifiers go in double quotes (https://trino.io/docs/current/language/
# reserved.html).

_TRINO_RESERVED = _keywords(
    """
    ALTER AND AS BETWEEN BY CASE CAST CONSTRAINT CREATE CROSS CUBE CURRENT_CATALOG CURRENT_DATE
    CURRENT_PATH CURRENT_ROLE CURRENT_SCHEMA CURRENT_TIME CURRENT_TIMESTAMP CURRENT_USER DEALLOCATE
    DELETE DESCRIBE DISTINCT DROP ELSE END ESCAPE EXCEPT EXECUTE EXISTS EXTRACT FALSE FOR FROM FULL
    GROUP GROUPING HAVING IN INNER INSERT INTERSECT INTO IS JOIN JSON_ARRAY JSON_EXISTS JSON_OBJECT
    JSON_QUERY JSON_TABLE JSON_VALUE LEFT LIKE LISTAGG LOCALTIME LOCALTIMESTAMP NATURAL NORMALIZE NOT
    NULL ON OR ORDER OUTER PREPARE RECURSIVE RIGHT ROLLUP SELECT SKIP TABLE THEN TRIM TRUE UESCAPE UNION
    UNNEST USING VALUES WHEN WHERE WITH
    """
)


def _trino(tables: Sequence[TableRef], database: str, catalog_name: str, glue: bool) -> list[str]:
    notes = []
    if glue:
        notes += [
            f"The lake's tables are already registered in the Glue database `{NAMESPACE}`: a Trino Iceberg "
            "catalog with iceberg.catalog.type=glue reads them directly, nothing below needs to run.",
        ]
    notes += [
        "Needs iceberg.register-table-procedure.enabled=true in the Trino catalog's properties.",
        *_registration_notes(
            f"CALL {catalog_name}.system.unregister_table(schema_name => ..., table_name => ...), then "
            "register it again"
        ),
    ]
    catalog = _trino_ident(catalog_name)
    out = [_comment(notes), f"CREATE SCHEMA IF NOT EXISTS {catalog}.{_trino_ident(database)};"]
    for ref in tables:
        out.append(
            f"CALL {catalog}.system.register_table(\n"
            f"  schema_name => {_sql_literal(database)},\n"
            f"  table_name => {_sql_literal(ref.name)},\n"
            f"  table_location => {_sql_literal(ref.location)},\n"
            f"  metadata_file_name => {_sql_literal(_metadata_file_name(ref))}\n"
            ");"
        )
    return out


def _metadata_file_name(ref: TableRef) -> str:
    """The bare name of the current metadata file, which Trino looks up in `<location>/metadata/`."""
    folder, _, name = ref.metadata_location.rpartition("/")
    if not name or folder != ref.location.rstrip("/") + "/metadata":
        raise ValueError(
            f"{ref.name}: metadata file {ref.metadata_location} is not in {ref.location}/metadata/, "
            "where Trino's register_table looks for it"
        )
    return name


# -- Spark ------------------------------------------------------------------------------------------
# Iceberg Spark procedures, `register_table` (https://iceberg.apache.org/docs/latest/spark-procedures/
# #register_table):
#   CALL spark_catalog.system.register_table(
#     table => 'db.tbl',
#     metadata_file => 'path/to/metadata/file.json'
#   );
# `table` is parsed as a Spark multi-part identifier (backticks around a part that needs them).
# CREATE NAMESPACE [IF NOT EXISTS] creates the namespace in a v2 catalog first (a Hive or Glue backed
# catalog refuses a table in a missing database).
# String literals follow Spark's lexer (SqlBaseLexer.g4, STRING_LITERAL): a backslash escapes the next
# character, in every Spark version. A doubled quote is not part of that rule (it lexes as two adjacent
# literals, which Spark versions have read differently), so a quote is written `\'`.

_SPARK_NOTE = "Needs the Iceberg Spark runtime and a catalog named {catalog} configured on the session."


def _spark(tables: Sequence[TableRef], database: str, catalog_name: str, glue: bool) -> list[str]:
    notes = []
    if glue:
        notes += [
            f"The lake's tables are already registered in the Glue database `{NAMESPACE}`: a Spark Iceberg "
            "catalog backed by Glue (GlueCatalog) reads them directly, nothing below needs to run.",
        ]
    notes += [
        _SPARK_NOTE.format(catalog=catalog_name),
        *_registration_notes(
            "remove the entry (check first that your catalog's DROP TABLE without PURGE keeps the "
            "files), then register it again"
        ),
    ]
    catalog = _spark_ident(catalog_name)
    out = [_comment(notes), f"CREATE NAMESPACE IF NOT EXISTS {catalog}.{_spark_ident(database)};"]
    for ref in tables:
        name = f"{_spark_ident(database)}.{_spark_ident(ref.name)}"
        out.append(
            f"CALL {catalog}.system.register_table(\n"
            f"  table => {_backslash_literal(name)},\n"
            f"  metadata_file => {_backslash_literal(ref.metadata_location)}\n"
            ");"
        )
    return out


def _registration_notes(reregister: str) -> list[str]:
    return [
        "Registers each table's metadata file as of now (the stage tables' as the latest finished run "
        "left them): a read-only view of the lake.",
        f"Later costlake runs stay invisible there; to see them, {reregister}.",
        "`costlake maintain` removes the metadata files and snapshots it no longer keeps, these "
        "included: register again after it runs.",
        "Never write through this catalog: one table owned by two catalogs loses updates and can be "
        "corrupted (Iceberg docs, register_table).",
    ]


# -- quoting ----------------------------------------------------------------------------------------
_PLAIN = re.compile(r"[a-z][a-z0-9_]*\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _check(text: str, what: str) -> str:
    if not text or _CONTROL.search(text):
        raise ValueError(f"{what} {text!r}: empty or holds control characters")
    return text


def _athena_ident(name: str) -> str:
    _check(name, "identifier")
    if _PLAIN.match(name) and name.upper() not in _ATHENA_DDL_RESERVED:
        return name
    return "`" + name.replace("`", "``") + "`"


def _trino_ident(name: str) -> str:
    _check(name, "identifier")
    if _PLAIN.match(name) and name.upper() not in _TRINO_RESERVED:
        return name
    return '"' + name.replace('"', '""') + '"'


def _spark_ident(name: str) -> str:
    _check(name, "identifier")
    return name if _PLAIN.match(name) else "`" + name.replace("`", "``") + "`"


def _sql_literal(value: str) -> str:
    """A standard SQL string literal (Trino)."""
    return "'" + _check(value, "string").replace("'", "''") + "'"


def _backslash_literal(value: str) -> str:
    """A string literal for the HiveQL-based Athena DDL and for Spark SQL: backslash escapes."""
    return "'" + _check(value, "string").replace("\\", "\\\\").replace("'", "\\'") + "'"


def _comment(lines: Sequence[str]) -> str:
    return "\n".join(f"-- {line}" for line in lines)
