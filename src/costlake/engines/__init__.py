"""Compute engines: each runs the stages' SQL over registered inputs and writes partitioned Parquet."""

from costlake.engines.base import Engine, create_engine, register_engine

__all__ = ["Engine", "create_engine", "register_engine"]
