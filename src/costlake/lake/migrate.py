"""Bring an existing table's schema up to its definition in tables.py (Iceberg schema evolution).

A warehouse outlives the code that wrote it. When a release adds a column to a table, opening an
older warehouse adds the column to the stored table in one Iceberg schema update: data files written
before it read the column as NULL, nothing is rewritten. Columns are only ever appended (at the end
of the definition, always optional), never renamed, retyped or dropped; a stored table with columns
this code does not know was written by a newer release and is refused rather than guessed at.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from costlake.errors import ConfigError
from costlake.tables import TableDef

if TYPE_CHECKING:
    from pyiceberg.table import Table

log = logging.getLogger(__name__)


def missing_columns(table: Table, tdef: TableDef) -> list[str]:
    """The defined columns the stored table lacks, in definition order; refuses unknown ones."""
    stored = [field.name for field in table.schema().fields]
    unknown = [name for name in stored if name not in tdef.column_names]
    if unknown:
        raise ConfigError(
            f"table {tdef.name} has columns this version of costlake does not know ({', '.join(unknown)}): "
            "it was written by a newer release; upgrade costlake to open this warehouse"
        )
    if stored != tdef.column_names[: len(stored)]:
        raise ConfigError(
            f"table {tdef.name}: stored columns {stored} are not a prefix of the defined ones; "
            "columns are only ever appended"
        )
    return tdef.column_names[len(stored) :]


def migrate_table(table: Table, tdef: TableDef) -> list[str]:
    """Append the missing columns to the stored table; returns their names (empty: nothing to do)."""
    missing = missing_columns(table, tdef)
    if missing:
        with table.update_schema() as update:
            update.union_by_name(tdef.iceberg_schema())
        log.info("migrated table %s: added %s", tdef.name, ", ".join(missing), extra={"table": tdef.name})
    return missing
