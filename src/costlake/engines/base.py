"""The small base class every engine implements, and the registry that picks one by name.

An engine never decides semantics: the stages hand it SQL over named inputs, and it returns Arrow
(small results) or writes Parquet files, one `usage_date` per file with the column kept inside.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar

import pyarrow as pa

from costlake.engines.dialect import Dialect
from costlake.errors import ConfigError
from costlake.settings import Settings


class Engine(ABC):
    """A session of one engine. Inputs are named relations the SQL refers to; `dialect` holds the
    few SQL spellings this engine needs that the others write differently."""

    name: ClassVar[str]
    dialect: ClassVar[Dialect]

    def __init__(self, settings: Settings, temp_dir: Path) -> None:
        self.settings = settings
        self.temp_dir = temp_dir

    @abstractmethod
    def register_files(self, name: str, files: Sequence[str], schema: pa.Schema) -> None:
        """Expose Parquet files (possibly none) with the given schema as relation `name`."""

    @abstractmethod
    def register_arrow(self, name: str, table: pa.Table) -> None:
        """Expose an in-memory Arrow table as relation `name`."""

    @abstractmethod
    def materialize(self, name: str, sql: str) -> None:
        """Compute `sql` once into relation `name` (spilling if needed)."""

    def define(self, name: str, sql: str) -> None:
        """Relation `name` as `sql`, computed again by each query that reads it: for a cheap filter of
        relations already materialised, which would otherwise hold a second copy of their rows. An
        engine without such views materialises it."""
        self.materialize(name, sql)

    @abstractmethod
    def release(self, name: str) -> None:
        """Free relation `name` (materialised or defined) once no later step reads it."""

    @abstractmethod
    def fetch(self, sql: str) -> pa.Table:
        """Run `sql` and return the (small) result as Arrow."""

    @abstractmethod
    def write_partitions(self, sql: str, out_dir: Path, partition_by: str) -> list[str]:
        """Write the result of `sql` as Parquet under `out_dir`, one value of `partition_by` per file."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the session."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_REGISTRY: dict[str, Callable[[Settings, Path], Engine]] = {}
# Built-in engines register themselves when their module is imported, on first use only: the Spark
# module must not load pyspark (or need Java) for a DuckDB run.
_BUILT_IN = {"duckdb": "costlake.engines.duckdb_engine", "spark": "costlake.engines.spark_engine"}


def register_engine(name: str, factory: Callable[[Settings, Path], Engine]) -> None:
    _REGISTRY[name] = factory


def create_engine(settings: Settings, temp_dir: Path) -> Engine:
    """The engine named by `settings.engine`."""
    if settings.engine not in _REGISTRY and settings.engine in _BUILT_IN:
        importlib.import_module(_BUILT_IN[settings.engine])
    try:
        factory = _REGISTRY[settings.engine]
    except KeyError:
        known = ", ".join(sorted(set(_REGISTRY) | set(_BUILT_IN)))
        raise ConfigError(f"unknown engine {settings.engine!r}; choose one of: {known}") from None
    return factory(settings, temp_dir)
