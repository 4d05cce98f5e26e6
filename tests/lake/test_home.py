"""A mistyped warehouse path is refused, not turned into a new, empty lake: only the commands that
bring data in create a warehouse."""

from __future__ import annotations

from pathlib import Path

import pytest

from costlake.synthetic.generate import generate
from helpers import cli


@pytest.mark.parametrize(
    "command",
    [
        ("query", "SELECT count(*) FROM daily_account_cost"),
        ("run",),
        ("anomalies",),
        ("validate",),
        ("catalog", "ddl"),
    ],
)
def test_a_command_that_does_not_bring_data_in_refuses_a_folder_without_a_warehouse(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    missing, empty, touched = tmp_path / "warehuose", tmp_path / "empty", tmp_path / "touched"
    empty.mkdir()
    touched.mkdir()
    (touched / "catalog.db").touch()  # an empty file is no catalog
    for where in (missing, empty, touched):
        done = cli(where, *command)
        assert done.returncode == 1, done.stdout + done.stderr
        assert done.stderr.strip() == (
            f"error: {where.resolve()}: no costlake warehouse here; check the warehouse setting "
            "(--warehouse, COSTLAKE_WAREHOUSE or costlake.toml): `costlake ingest` creates one"
        )
    assert not missing.exists() and list(empty.iterdir()) == []
    assert [p.name for p in touched.iterdir()] == ["catalog.db"]


def test_ingest_creates_the_warehouse_and_then_every_command_finds_it(tmp_path: Path) -> None:
    made = generate(tmp_path / "bills", events=300, days=2, batches=1)
    assert cli(tmp_path / "wh", "ingest", str(made.files[0])).returncode == 0
    assert (tmp_path / "wh" / "catalog.db").is_file()
    done = cli(tmp_path / "wh", "query", "SELECT count(*) AS n FROM raw_billing_events", "--format", "csv")
    assert done.returncode == 0 and done.stdout.splitlines()[1] != "0", done.stderr
