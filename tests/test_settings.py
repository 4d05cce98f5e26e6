"""Settings come from flags, then COSTLAKE_* environment, then costlake.toml, then defaults."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from costlake.settings import Settings, load_settings


def test_precedence_flags_env_toml_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "costlake.toml").write_text(
        'warehouse = "from-toml"\ncurrency = "eur"\ncompleteness_lag_hours = 48\n'
    )
    monkeypatch.setenv("COSTLAKE_CURRENCY", "gbp")
    s = load_settings(warehouse="from-flag", engine=None)
    assert (s.warehouse, s.currency, s.completeness_lag_hours, s.engine) == ("from-flag", "GBP", 48, "duckdb")
    monkeypatch.delenv("COSTLAKE_CURRENCY")
    assert load_settings().currency == "EUR" and load_settings().warehouse == "from-toml"


def test_config_file_named_by_environment(tmp_path, monkeypatch):
    other = tmp_path / "elsewhere.toml"
    other.write_text("completeness_lag_hours = 6\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COSTLAKE_CONFIG", str(other))
    assert load_settings().completeness_lag_hours == 6


@pytest.mark.parametrize(
    "bad",
    [
        {"currency": "dollars"},
        {"completeness_lag_hours": -1},
        {"nonsense": 1},
        {"engine": "pandas"},
        {"duckdb_threads": 0},
        {"duckdb_threads": 100_000},  # a typo would start that many threads per query
        # a window of years would take GiBs per batch of series; a span past year 9999 could not be dated
        {"anomaly_window_days": 367},
        {"completeness_lag_hours": 3_000_000_000},  # DuckDB's intervals overflowed: an internal error
        {"duckdb_memory_limit": "banana"},  # refused by DuckDB at the first query, as an internal error
        {"duckdb_memory_limit": "100"},
        {"duckdb_memory_limit": "0GB"},
        {"duckdb_memory_limit": "150%"},  # DuckDB takes a share of the memory up to 100%
        {"anomaly_mix_shift_days": 400_000},
    ],
)
def test_invalid_settings_are_refused(bad, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValidationError):
        Settings(**bad)


@pytest.mark.parametrize("name", ["anomaly_min_history_days", "anomaly_shift_days"])
def test_history_a_band_cannot_read_is_refused(name, tmp_path, monkeypatch):
    """A band reads at most the window: asking for more history would silently judge no day."""
    monkeypatch.chdir(tmp_path)
    refused = f"{name} \\(15\\) must not exceed anomaly_window_days \\(14\\)"
    with pytest.raises(ValidationError, match=refused):
        Settings(anomaly_window_days=14, **{name: 15})
    assert Settings(anomaly_window_days=14, **{name: 14}).anomaly_window_days == 14


@pytest.mark.parametrize(
    "size",
    ["2GB", "1536MB", "1.5 GiB", "500kb", "50%", "100%", "1T", ".5GB", "2.GB", "2 gigabytes", "none", "-1"],
)
def test_duckdb_reads_every_memory_limit_the_settings_take(size, tmp_path, monkeypatch):
    import duckdb

    monkeypatch.chdir(tmp_path)
    limit = Settings(duckdb_memory_limit=size).duckdb_memory_limit
    duckdb.connect().execute(f"SET memory_limit = '{limit}'")
