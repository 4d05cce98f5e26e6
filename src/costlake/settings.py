"""Typed settings, read from flags, then `COSTLAKE_*` environment variables, then `costlake.toml`.

Precedence (highest first): explicit keyword arguments (the CLI's flags), environment, the TOML file
(`./costlake.toml`, or the file named by `COSTLAKE_CONFIG`), defaults.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class Settings(BaseSettings):
    """Everything costlake can be configured with."""

    model_config = SettingsConfigDict(env_prefix="COSTLAKE_", extra="forbid", validate_default=True)

    warehouse: str = Field("./warehouse", description="Folder (or s3:// URI) holding the tables and catalog.")
    catalog: Literal["sql", "glue"] = Field(
        "sql",
        description="Catalog: `sql` (an SQLite catalog inside a local warehouse, or `catalog_uri`) or "
        "`glue` (AWS Glue Data Catalog, so Athena can query the tables).",
    )
    catalog_uri: str | None = Field(
        None, description="SQLAlchemy URI of the SQL catalog; default: `catalog.db` in the warehouse."
    )
    engine: Literal["duckdb", "spark"] = Field(
        "duckdb",
        description="Compute engine for the pipeline stages: `duckdb` (embedded, the default) or `spark` "
        "(PySpark, install `costlake[spark]`; needs Java 17+).",
    )
    s3_endpoint: str | None = Field(
        None, description="Endpoint of an S3-compatible store (e.g. http://127.0.0.1:9000); default AWS."
    )
    glue_endpoint: str | None = Field(None, description="Endpoint override of the Glue API; default AWS.")
    aws_region: str | None = Field(None, description="AWS region of S3 and Glue; default the AWS chain's.")
    local_dir: str | None = Field(
        None, description="Local folder for a remote warehouse's lock, staging and file cache."
    )
    currency: str = Field(
        "USD", description="Reporting currency; rows in any other currency are quarantined."
    )
    completeness_lag_hours: int = Field(
        24, ge=0, description="Hours after the end of a usage day before its data counts as complete (T+1)."
    )
    negative_daily_total: Literal["warning", "error"] = Field(
        "warning", description="Severity of a negative account-day total in the quality gate."
    )
    duckdb_threads: int | None = Field(None, ge=1, description="DuckDB worker threads; default: all cores.")
    duckdb_memory_limit: str | None = Field(
        None,
        description="DuckDB memory cap such as `2GB`; larger work spills to the warehouse's temp folder.",
    )
    spark_master: str = Field(
        "local[*]",
        description="Spark master URL: `local[*]` runs in-process on every core, `local[2]` on two; under "
        "spark-submit its own --master wins.",
    )
    spark_driver_memory: str = Field(
        "2g", description="Spark driver JVM heap such as `2g`; fixed when the process starts its session."
    )
    spark_shuffle_partitions: int = Field(
        8, ge=1, description="Spark `spark.sql.shuffle.partitions`: tasks per shuffle (joins, aggregations)."
    )
    spark_conf: dict[str, str] = Field(
        default_factory=dict,
        description="Further Spark properties, `spark.*` key to value (env: a JSON object). JVM and "
        "context properties take effect when the process starts its session; SQL ones in every engine.",
    )

    @field_validator("currency")
    @classmethod
    def _iso_currency(cls, value: str) -> str:
        code = value.strip().upper()
        if len(code) != 3 or not code.isalpha():
            raise ValueError(f"currency must be a 3-letter ISO 4217 code, got {value!r}")
        return code

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = Path(os.environ.get("COSTLAKE_CONFIG", "costlake.toml"))
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=toml_file))


def load_settings(**overrides: object) -> Settings:
    """Settings with the given overrides (None values are ignored, so unset flags fall through)."""
    given = {key: value for key, value in overrides.items() if value is not None}
    return Settings(**given)  # type: ignore[arg-type]
