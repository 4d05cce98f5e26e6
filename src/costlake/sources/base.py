"""The base class of a billing source (the registry that picks one is sources/registry.py).

A source parses one file inside a DuckDB connection and leaves two temp tables behind:
`accepted` with the raw table's columns and `rejected` with the quarantine table's columns.
It never commits anything: ingestion (pipeline/ingest.py) does that.
"""

from __future__ import annotations

import csv
import datetime as dt
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import duckdb

from costlake.errors import InputError


@dataclass(frozen=True)
class BatchContext:
    """What a source needs to know about the batch it is parsing."""

    batch_id: str
    batch_seq: int
    source_file: str
    loaded_at: dt.datetime
    currency: str


class Source(ABC):
    """One billing file format."""

    format: ClassVar[str]
    description: ClassVar[str]

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
        """Create the temp tables `accepted` and `rejected` in `con` from the file at `path`."""


def read_header(path: Path) -> list[str]:
    """The file's header, trimmed and lower-cased."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle), None)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: not a readable UTF-8 CSV file ({exc})") from None
    if not header:
        raise InputError(f"{path}: empty file, expected a CSV header")
    return [name.strip().lower() for name in header]
