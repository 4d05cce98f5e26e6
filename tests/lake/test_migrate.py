"""Opening a warehouse brings each stored table's schema up to its definition, and only appends."""

from __future__ import annotations

import dataclasses

import pytest
from pyiceberg.types import StringType

from costlake.errors import ConfigError
from costlake.lake.migrate import migrate_table
from costlake.lake.warehouse import Warehouse
from costlake.tables import DAILY_ACCOUNT, TABLES
from helpers import SEED, ingest_and_run, query_rows


def _with_cost_center():  # type: ignore[no-untyped-def]
    """daily_account_cost as a later release might define it: one more column at the end."""
    return dataclasses.replace(DAILY_ACCOUNT, columns=(*DAILY_ACCOUNT.columns, ("cost_center", StringType())))


def test_a_column_added_to_a_definition_is_appended_to_the_stored_table(wh: Warehouse) -> None:
    ingest_and_run(wh, SEED)
    newer = dataclasses.replace(
        DAILY_ACCOUNT, columns=(*DAILY_ACCOUNT.columns, ("cost_center", StringType()))
    )
    assert migrate_table(wh.table(DAILY_ACCOUNT), newer) == ["cost_center"]
    wh.refresh()
    stored = wh.table(DAILY_ACCOUNT)
    assert [f.name for f in stored.schema().fields] == newer.column_names
    assert migrate_table(stored, newer) == []  # idempotent
    # Nothing was rewritten: the published rows read as before.
    rows = query_rows(wh, "SELECT sum(total_cost_usd) AS t FROM daily_account_cost")
    assert str(rows[0]["t"]) == "32.000000000000"


def test_a_table_written_by_a_newer_release_is_refused(wh: Warehouse) -> None:
    newer = dataclasses.replace(
        DAILY_ACCOUNT, columns=(*DAILY_ACCOUNT.columns, ("cost_center", StringType()))
    )
    migrate_table(wh.table(DAILY_ACCOUNT), newer)
    wh.refresh()
    with pytest.raises(ConfigError, match="written by a newer release"):
        migrate_table(wh.table(DAILY_ACCOUNT), DAILY_ACCOUNT)


def test_opening_a_warehouse_leaves_every_table_at_its_definition(wh: Warehouse) -> None:
    fresh = Warehouse(wh.settings)
    fresh.ensure_tables()
    for tdef in TABLES.values():
        assert [f.name for f in fresh.table(tdef).schema().fields] == tdef.column_names, tdef.name
