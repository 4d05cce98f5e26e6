"""The lake's tables as another engine registers them (`costlake catalog ddl`, see ddl.py): where each
one's files are, and which of its metadata files to register."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyiceberg.serializers import FromInputFile

from costlake.tables import TABLES, TableDef

if TYPE_CHECKING:
    from pyiceberg.table import Table

    from costlake.lake.warehouse import Warehouse

__all__ = ["TableRef", "table_refs"]


@dataclass(frozen=True)
class TableRef:
    """One lake table as another engine needs it: its definition and where its files are.

    `location` is the table's base location (`Table.location()`); `metadata_location` is the full URI
    of the `*.metadata.json` to register (`Table.metadata_location`, or for a stage table the one of
    the latest finished run); `note` says why that could not be had, if it could not.
    """

    name: str
    tdef: TableDef
    location: str
    metadata_location: str
    note: str = ""


def table_refs(warehouse: Warehouse) -> list[TableRef]:
    """Every lake table with its location and metadata file, read from the warehouse's catalog. The
    stage tables are registered as the latest finished run left them, as `costlake query` reads
    them: a run still committing (or killed halfway) has moved some of them on already, and the
    other engine would read stage 1 of one run beside stage 3 of another."""
    from costlake.catalog.views import RUN_TABLES, snapshot_view

    warehouse.refresh()  # the current metadata file, not one cached before another process committed
    published = snapshot_view(warehouse)
    refs = []
    for tdef in TABLES.values():
        table = warehouse.table(tdef)
        metadata, note = table.metadata_location, ""
        if tdef.name in RUN_TABLES:
            kept = _metadata_at(table, published.get(tdef.name))
            metadata = kept or metadata
            if kept is None:
                note = (
                    "its metadata file as of the latest finished run is no longer kept: this is its "
                    "current one, which may hold part of a later run that is not finished"
                )
        refs.append(TableRef(tdef.name, tdef, table.location(), metadata, note))
    return refs


def _metadata_at(table: Table, snapshot_id: int | None) -> str | None:
    """The newest metadata file of `table` whose current snapshot is `snapshot_id` (None: the table
    before any commit of data), from its metadata log; None if none is kept."""
    if table.metadata.current_snapshot_id == snapshot_id:
        return table.metadata_location
    for entry in reversed(table.metadata.metadata_log):
        try:
            older = FromInputFile.table_metadata(table.io.new_input(entry.metadata_file))
        except OSError:  # gone (an object store may answer 403 for a key it no longer has)
            continue
        if older.current_snapshot_id == snapshot_id:
            return entry.metadata_file
    return None
