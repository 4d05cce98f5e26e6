"""Choosing an engine: Spark is imported only when chosen, and a missing piece says what to do."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from pydantic import ValidationError

from costlake.settings import Settings


def python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ, **env), timeout=120
    )


def test_spark_is_imported_only_when_chosen_and_says_what_is_missing(tmp_path):
    duckdb_run = python(
        "import sys, pathlib\n"
        "from costlake.engines import create_engine\n"
        "from costlake.settings import Settings\n"
        f"create_engine(Settings(warehouse='w'), pathlib.Path({str(tmp_path)!r})).close()\n"
        "assert 'pyspark' not in sys.modules, 'pyspark imported for a DuckDB run'\n"
    )
    assert duckdb_run.returncode == 0, duckdb_run.stderr
    start_spark = (
        "import pathlib\n"
        "from costlake.engines import create_engine\n"
        "from costlake.errors import ConfigError\n"
        "from costlake.settings import Settings\n"
        "try:\n"
        f"    create_engine(Settings(warehouse='w', engine='spark'), pathlib.Path({str(tmp_path)!r}))\n"
        "except ConfigError as exc:\n"
        "    print(exc)\n"
    )
    no_pyspark = python("import sys; sys.modules['pyspark'] = None\n" + start_spark)
    assert "install costlake[spark]" in no_pyspark.stdout, no_pyspark.stdout + no_pyspark.stderr
    no_java = python(start_spark, PATH=str(tmp_path), JAVA_HOME="")
    assert "needs Java 17+" in no_java.stdout and "openjdk-17-jre-headless" in no_java.stdout, no_java.stderr


def test_spark_settings_have_defaults_and_read_the_environment(monkeypatch):
    monkeypatch.setenv("COSTLAKE_ENGINE", "spark")
    monkeypatch.setenv("COSTLAKE_SPARK_CONF", '{"spark.sql.adaptive.enabled": "false"}')
    monkeypatch.setenv("COSTLAKE_SPARK_SHUFFLE_PARTITIONS", "3")
    settings = Settings(warehouse="w")
    assert (settings.engine, settings.spark_master, settings.spark_driver_memory) == (
        "spark",
        "local[*]",
        None,  # sized from the machine when the session starts (spark_memory.py)
    )
    assert settings.spark_shuffle_partitions == 3
    assert settings.spark_conf == {"spark.sql.adaptive.enabled": "false"}
    with pytest.raises(ValidationError):
        Settings(warehouse="w", spark_shuffle_partitions=0)


@pytest.mark.spark
@pytest.mark.parametrize(
    ("java_options", "env", "collectors"),
    [
        (None, {}, {"PS Scavenge", "PS MarkSweep"}),  # the default: the parallel (throughput) collector
        ("-XX:+UseSerialGC -Xss4m", {}, {"Copy", "MarkSweepCompact"}),  # a collector asked for wins
        (None, {"JAVA_TOOL_OPTIONS": "-XX:+UseSerialGC"}, {"Copy", "MarkSweepCompact"}),  # so does the JVM's
        ('-Dnote="-XX:+UseSerialGC  kept"', {}, {"PS Scavenge", "PS MarkSweep"}),  # inside a value: no choice
        ('"-XX:+UseSerialGC"', {}, {"Copy", "MarkSweepCompact"}),  # quoted, as spark-submit allows
        ("-XX:+UseMaximumCompactionOnSystemGC", {}, {"PS Scavenge", "PS MarkSweep"}),  # not a collector
    ],
)
def test_the_driver_jvm_runs_the_parallel_collector_unless_another_is_asked_for(
    tmp_path, java_options, env, collectors
):
    conf = {} if java_options is None else {"spark.driver.extraJavaOptions": java_options}
    started = python(
        "import json\n"
        "from costlake.engines.spark_engine import spark_session\n"
        "from costlake.settings import Settings\n"
        f"settings = Settings(warehouse='w', engine='spark', spark_master='local[1]', spark_conf={conf!r})\n"
        "jvm = spark_session(settings).sparkContext._jvm\n"
        "beans = jvm.java.lang.management.ManagementFactory.getGarbageCollectorMXBeans()\n"
        "print(json.dumps(sorted(str(bean.getName()) for bean in beans)))\n"
        "print(jvm.java.lang.System.getProperty('note'))\n",
        **env,
    )
    assert started.returncode == 0, started.stderr
    assert set(json.loads(started.stdout.splitlines()[-2])) == collectors
    if java_options and "note" in java_options:
        assert started.stdout.splitlines()[-1] == "-XX:+UseSerialGC  kept"  # passed on as written


@pytest.mark.spark
def test_a_jvm_that_will_not_start_is_a_configuration_error_naming_where_options_come_from(tmp_path):
    refused = python(
        "import sys\n"
        "from costlake.engines.spark_engine import spark_session\n"
        "from costlake.errors import ConfigError\n"
        "from costlake.settings import Settings\n"
        "conf = {'spark.driver.extraJavaOptions': '-XX:+UseEpsilonGC'}  # experimental: not unlocked\n"
        "settings = Settings(warehouse='w', engine='spark', spark_master='local[1]', spark_conf=conf)\n"
        "try:\n"
        "    spark_session(settings)\n"
        "except ConfigError as exc:\n"
        "    print(exc, file=sys.stderr)\n"
        "    sys.exit(7)\n"
    )
    assert refused.returncode == 7, refused.stderr
    message = refused.stderr.strip().splitlines()[-1]
    assert "JVM did not start" in message and "spark.driver.extraJavaOptions" in message
    assert "JAVA_TOOL_OPTIONS" in message
