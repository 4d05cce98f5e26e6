"""The DuckDB helpers shared by every layer."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

from costlake import tables
from costlake.duck import _types

SCHEMAS = [t.arrow_schema() for t in vars(tables).values() if isinstance(t, tables.TableDef)]


@pytest.mark.parametrize("schema", SCHEMAS, ids=[s.names[0] + f"-{len(s)}" for s in SCHEMAS])
def test_the_type_names_of_every_table_are_duckdbs_own(schema: pa.Schema) -> None:
    """`table_scan` casts NULLs to these names: they must be what DuckDB itself calls the types."""
    con = duckdb.connect()
    assert _types(schema) == tuple(str(t) for t in con.from_arrow(schema.empty_table()).types)
