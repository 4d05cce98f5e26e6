"""The base class of a billing source (the registry that picks one is sources/registry.py).

A source parses one file inside a DuckDB connection and leaves two temp views behind:
`accepted` with the raw table's columns and `rejected` with the quarantine table's columns.
It never commits anything: ingestion (pipeline/ingest.py) does that.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import duckdb

from costlake.sources.input_files import column_names


@dataclass(frozen=True)
class RowLimits:
    """What one row may hold before it goes to quarantine (the settings of the same names)."""

    usage_date_min: dt.date = dt.date(2000, 1, 1)
    usage_date_max_days_ahead: int = 400
    max_field_bytes: int = 4096


@dataclass(frozen=True)
class BatchContext:
    """What a source needs to know about the batch it is parsing."""

    batch_id: str
    batch_seq: int
    source_file: str
    loaded_at: dt.datetime
    currency: str
    limits: RowLimits = RowLimits()
    # The batch_seq of the delivery this batch reads again (`ingest --reparse`); None: its own.
    delivery_seq: int | None = None
    # The delivery in parts this batch is a part of (RAW's `delivery_group`); None: a delivery of its own.
    delivery_group: int | None = None

    @property
    def date_window(self) -> tuple[dt.date, dt.date]:
        """The first and the last plausible date of a row in this batch (every date and timestamp
        column, usage dates and ingestion times alike)."""
        ahead = dt.timedelta(days=self.limits.usage_date_max_days_ahead)
        return self.limits.usage_date_min, self.loaded_at.date() + ahead


class Source(ABC):
    """One billing file format."""

    format: ClassVar[str]
    description: ClassVar[str]
    key_columns: ClassVar[str]  # the few columns that identify the format, for a short error message

    @classmethod
    @abstractmethod
    def matches(cls, header: list[str]) -> bool:
        """True when a file with this (normalised) header is in this format."""

    @classmethod
    @abstractmethod
    def expected(cls) -> str:
        """A short description of the columns this format needs, for error messages."""

    @abstractmethod
    def parse(self, con: duckdb.DuckDBPyConnection, path: Path, ctx: BatchContext) -> None:
        """Create the temp views `accepted` and `rejected` in `con` from the file at `path`."""


def read_header(path: Path) -> list[str]:
    """The file's column names (CSV header or Parquet schema), trimmed and lower-cased. A column with no
    name (a trailing comma) is named `column<N>`, N its place from 1."""
    return [name.lower() or f"column{i}" for i, name in enumerate(column_names(path), start=1)]
