"""The table definitions' Arrow schemas are exactly what PyIceberg derives from their Iceberg schemas."""

from __future__ import annotations

import pytest
from pyiceberg.io.pyarrow import schema_to_pyarrow

from costlake.tables import TABLES


@pytest.mark.parametrize("name", sorted(TABLES))
def test_arrow_schema_is_pyicebergs(name: str) -> None:
    tdef = TABLES[name]
    expected = schema_to_pyarrow(tdef.iceberg_schema(), include_field_ids=False)
    assert tdef.arrow_schema().equals(expected, check_metadata=True)
