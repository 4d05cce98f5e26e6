"""Shared fixtures: a warehouse in a temp folder, CSV writers, and the CLI run as a real process."""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from costlake.lake.warehouse import Warehouse
from costlake.settings import Settings
from helpers import NATIVE_HEADER


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(warehouse=str(tmp_path / "warehouse"))


@pytest.fixture
def wh(settings: Settings) -> Warehouse:
    warehouse = Warehouse(settings)
    warehouse.ensure_tables()
    return warehouse


@pytest.fixture
def write_csv(tmp_path: Path) -> Callable[..., Path]:
    """write_csv(name, rows, header=NATIVE_HEADER) -> path."""

    def write(name: str, rows: Sequence[Sequence[object]], header: Sequence[str] = NATIVE_HEADER) -> Path:
        path = tmp_path / name
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(rows)
        return path

    return write
