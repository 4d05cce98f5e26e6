"""Shared fixtures: a warehouse in a temp folder, CSV writers, and the CLI run as a real process."""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from costlake.errors import ConfigError
from costlake.lake.warehouse import Warehouse
from costlake.settings import Settings
from helpers import ENGINES, NATIVE_HEADER, engine_options

pytest_plugins = ["api_server"]  # the API tests' served lake (tests/api_server.py)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test marked `all_engines` runs once per engine; its Spark run carries the `spark` marker,
    so `-m "not spark"` is the fast set (CI runs everything). Other tests run on DuckDB."""
    if "engine" in metafunc.fixturenames and metafunc.definition.get_closest_marker("all_engines"):
        params = [pytest.param(name, marks=pytest.mark.spark if name == "spark" else ()) for name in ENGINES]
        metafunc.parametrize("engine", params, indirect=True)


@pytest.fixture(scope="session")
def spark_session() -> object:
    """The one SparkSession of the test run (local[2], 2 shuffle partitions), started on first use.
    Without Java the Spark tests fail, with what to install: they are never skipped."""
    from costlake.engines.spark_engine import find_java, spark_session

    try:
        find_java()
    except ConfigError as exc:
        pytest.fail(f"Spark tests cannot run: {exc} (select the others with -m 'not spark')", pytrace=False)
    return spark_session(Settings(warehouse="unused", **engine_options("spark")))


@pytest.fixture
def engine(request: pytest.FixtureRequest) -> str:
    """The engine under test: the parameter of an `all_engines` test, else DuckDB."""
    name: str = getattr(request, "param", "duckdb")
    if name == "spark":
        request.getfixturevalue("spark_session")
    return name


@pytest.fixture
def settings(tmp_path: Path, engine: str) -> Settings:
    return Settings(warehouse=str(tmp_path / "warehouse"), **engine_options(engine))


@pytest.fixture
def make_wh(tmp_path: Path, engine: str) -> Callable[..., Warehouse]:
    """make_wh(folder, **settings) -> a Warehouse on the engine under test."""

    def make(folder: str = "wh", **overrides: Any) -> Warehouse:
        return Warehouse(Settings(warehouse=str(tmp_path / folder), **engine_options(engine), **overrides))

    return make


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


@pytest.fixture
def fake_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake AWS credentials and region, and no instance metadata: boto3 never reaches a real account."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    """The two-tenant lake of two_tenants.py, built once per module: the read side's tests only read."""
    from two_tenants import build_lake

    return build_lake(tmp_path_factory.mktemp("two_tenants"))
