"""The DuckDB helpers shared by every layer."""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from costlake import tables
from costlake.duck import _types, connect
from costlake.settings import Settings

SCHEMAS = [t.arrow_schema() for t in vars(tables).values() if isinstance(t, tables.TableDef)]


@pytest.mark.parametrize("schema", SCHEMAS, ids=[s.names[0] + f"-{len(s)}" for s in SCHEMAS])
def test_the_type_names_of_every_table_are_duckdbs_own(schema: pa.Schema) -> None:
    """`table_scan` casts NULLs to these names: they must be what DuckDB itself calls the types."""
    con = duckdb.connect()
    assert _types(schema) == tuple(str(t) for t in con.from_arrow(schema.empty_table()).types)


def test_work_beyond_the_memory_limit_spills_outside_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection's spill goes to a folder of its own in the system's temp folder, which goes with
    the connection: never to DuckDB's default, `.tmp` in the working folder (a user's)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "system-tmp"))
    (tmp_path / "system-tmp").mkdir()
    con = connect(Settings(warehouse="w", duckdb_threads=2, duckdb_memory_limit="48MB"))
    con.execute("CREATE TEMP TABLE hashes AS SELECT md5(i::VARCHAR) AS h FROM range(2000000) t(i)")
    assert con.execute("SELECT count(*), sum(length(h)) FROM hashes").fetchone() == (2_000_000, 64_000_000)
    spilled = list((tmp_path / "system-tmp").glob("costlake-spill-*/*"))
    con.close()
    assert spilled  # 2M hashes (about 100 MB) did not fit in 48MB
    assert not list((tmp_path / "system-tmp").iterdir())  # DuckDB removed its folder on close
    assert not (tmp_path / ".tmp").exists()
