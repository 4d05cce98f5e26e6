"""Compute engines: each runs the stages' SQL over registered inputs and writes partitioned Parquet."""

from costlake.engines.base import Engine, create_engine, register_engine
from costlake.engines.dialect import DUCKDB, SPARK, Dialect

__all__ = ["DUCKDB", "SPARK", "Dialect", "Engine", "create_engine", "register_engine"]
