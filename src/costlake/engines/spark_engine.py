"""Apache Spark (PySpark) as the engine: the same stage SQL, written as Parquet that the lake commits
with PyIceberg, so Spark needs no Iceberg jars and nothing downloaded.

One SparkSession per process (Spark allows one context); each engine works in a child session
(`newSession`), so its temp views and SQL settings never leak into another engine's. What makes
Spark's files safe to commit, measured in `notes/spark-iceberg-commit.md`:

- timestamps are `TIMESTAMP_NTZ` written as INT64 micros (INT96 and UTC-adjusted ones are refused);
- `usage_date` stays inside every file: the folders are made from a copy of the column;
- one date per file: rows are repartitioned by that date before the write;
- ANSI mode and no decimal precision loss: an overflow fails instead of becoming NULL or rounding.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from costlake.duck import process_folder
from costlake.engines.base import Engine, register_engine
from costlake.engines.dialect import SPARK
from costlake.engines.spark_failures import Memory, failure
from costlake.engines.spark_memory import default_driver_memory
from costlake.errors import ConfigError
from costlake.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

MIN_JAVA = 17
COPY_PREFIX = "part_"  # no leading underscore: pyarrow skips `_`-prefixed folders

# SQL settings of every engine session: what the lake's files and the stages' semantics require.
SESSION_SQL_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.timestampType": "TIMESTAMP_NTZ",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.parquet.compression.codec": "zstd",
    "spark.sql.parquet.datetimeRebaseModeInWrite": "CORRECTED",
    "spark.sql.parquet.datetimeRebaseModeInRead": "CORRECTED",
    "spark.sql.ansi.enabled": "true",
    "spark.sql.decimalOperations.allowPrecisionLoss": "false",
    # Inferred constraints only prune; checkpointing stage 1 (a UNION ALL of events and period rows
    # rolled up in two steps) failed in Spark 4's constraint rewrite of the union ("key not found").
    "spark.sql.constraintPropagation.enabled": "false",
}

# Spark prints its start-up chatter and every failed query's stack although PySpark raises the
# error anyway (a failed task's stack twice, from the executor and the task scheduler, which costlake
# turns into one line): keep the console to real errors. log4j reads this file when the JVM starts; the
# launcher's own loggers are set too, or PySpark announces the "default log level" it picks.
LOG4J2 = """\
rootLogger.level = error
rootLogger.appenderRef.console.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = spark %p %c{1}: %m%n
logger.repl.name = org.apache.spark.repl.Main
logger.repl.level = error
logger.submit.name = org.apache.spark.deploy.SparkSubmit
logger.submit.level = error
logger.gateway.name = org.apache.spark.api.python.PythonGatewayServer
logger.gateway.level = error
logger.executor.name = org.apache.spark.executor.Executor
logger.executor.level = off
logger.tasks.name = org.apache.spark.scheduler.TaskSetManager
logger.tasks.level = off
"""

# The driver JVM's collector unless one is chosen (`_start_conf` looks where options come from): a
# batch job wants throughput, not G1's short pauses. Measured on 2 cores, local[2], 2026-12-05 (two
# alternating runs each): `run` of 1M events 57.7 s with G1 (JDK 17's default) against 51.3 s; of
# 1,500 events 23.3 s against 21.6 s.
DEFAULT_GC = "-XX:+UseParallelGC"
# JDK 17's collectors (and older names, which it ignores or refuses), as an option of their own,
# quoted or not.
_GC_OPTION = re.compile(
    r"""(?:^|\s)["']?-XX:\+Use(?:Serial|Parallel|ParallelOld|G1|Z|Shenandoah|Epsilon|ConcMarkSweep)GC"""
    r"""(?=["']?(?:\s|$))"""
)
# Where else a driver JVM's options may come from; a collector chosen there wins too (two would stop
# the JVM from starting).
JAVA_OPTION_VARIABLES = ("JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS", "_JAVA_OPTIONS", "SPARK_SUBMIT_OPTS")

_LOCK = threading.Lock()
_ROOT: list[SparkSession] = []  # the process's session, once started
_ROOT_CONF: dict[str, str] = {}  # the `spark_conf` it was started with
_LAUNCHED: list[bool] = []  # whether a launcher (spark-submit) started its JVM, not costlake


def java_version(java: str) -> int:
    """The major version `java -version` reports (`1.8.0_x` counts as 8)."""
    out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        raise ConfigError(f"the Spark engine could not read the Java version from `{java} -version`: {out!r}")
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def find_java() -> str:
    """The `java` Spark will start: `$JAVA_HOME/bin/java`, else the one on PATH."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).exists():
        where = f"JAVA_HOME={home} has no bin/java" if home else "no `java` on PATH and JAVA_HOME is unset"
        raise ConfigError(
            f"the Spark engine needs Java {MIN_JAVA}+ ({where}): install one, e.g. "
            "`apt-get install openjdk-17-jre-headless`, or use --engine duckdb"
        )
    if (version := java_version(java)) < MIN_JAVA:
        raise ConfigError(f"the Spark engine needs Java {MIN_JAVA}+, found Java {version} at {java}")
    return java


def _quiet_python_loggers() -> None:
    """PySpark logs every failed query with its stack before raising it; the exception is enough."""
    from pyspark.logger import PySparkLogger

    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        PySparkLogger.getLogger(name).setLevel(logging.CRITICAL)


def spark_session(settings: Settings) -> SparkSession:
    """The process's SparkSession, started on first use from `settings`; master, memory and JVM
    options are fixed from then on (one Spark context per process). Under `spark-submit` (or any
    launcher that started the JVM) the launcher's master and resources are kept."""
    try:
        from pyspark import SparkContext
        from pyspark.sql import SparkSession
    except ImportError:
        raise ConfigError(
            "the Spark engine needs PySpark: install costlake[spark] (pip install 'costlake[spark]')"
        ) from None
    with _LOCK:
        if _ROOT and SparkContext._active_spark_context is not None:
            return _ROOT[0]
        _ROOT.clear()  # none yet, or someone stopped it: start again
        _ROOT_CONF.clear()
        launched = "PYSPARK_GATEWAY_PORT" in os.environ or SparkSession.getActiveSession() is not None
        conf = dict(SESSION_SQL_CONF) if launched else _start_conf(settings)
        builder = SparkSession.builder
        for key, value in conf.items():
            builder = builder.config(key, value)
        session = _started(builder)
        session.sparkContext.setLogLevel("ERROR")
        _quiet_python_loggers()
        _ROOT.append(session)
        _LAUNCHED[:] = [launched]
        if not launched:
            _ROOT_CONF.update(settings.spark_conf)
        return session


def _started(builder: Any) -> SparkSession:
    """`builder.getOrCreate()`; a JVM that would not start (an option it refuses, two collectors) is
    a configuration error, whose cause the JVM itself has printed."""
    from pyspark.errors import PySparkRuntimeError

    try:
        with _own_interrupts():
            return builder.getOrCreate()
    except PySparkRuntimeError as exc:
        if exc.getCondition() != "JAVA_GATEWAY_EXITED":
            raise
        variables = ", ".join(JAVA_OPTION_VARIABLES)
        raise ConfigError(
            "the Spark engine's JVM did not start (its own message is printed above): check the Java "
            f"options in spark_conf (spark.driver.extraJavaOptions) and in {variables}"
        ) from None


@contextlib.contextmanager
def _own_interrupts() -> Iterator[None]:
    """Keeps the process's SIGINT handler. A SparkContext installs its own (cancel every job, then
    raise KeyboardInterrupt wherever the main thread is): raised inside a Py4J call, py4j logs it
    with tracebacks and the command may even end with exit 0. costlake's handler (cli.main) stops the
    command as for any engine, and the JVM's jobs end with the process."""
    if threading.current_thread() is not threading.main_thread():
        yield  # no handler can be set from here, and the context sets none either
        return
    handler = signal.getsignal(signal.SIGINT)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, handler)


def _start_conf(settings: Settings) -> dict[str, str]:
    """The properties of a session this process starts itself (checks Java first)."""
    find_java()
    # Spark's local files (shuffles, spills) are billing data: in this process's folder, which the
    # next process sweeps if this one is killed (duck.process_folder).
    scratch = Path(tempfile.mkdtemp(prefix="costlake-spark-", dir=process_folder()))
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    log_config = scratch / "log4j2.properties"
    log_config.write_text(LOG4J2)
    extra = dict(settings.spark_conf)
    asked = extra.pop("spark.driver.extraJavaOptions", "").strip()
    elsewhere = [extra.get("spark.driver.defaultJavaOptions", "")]
    elsewhere += [os.environ.get(name, "") for name in JAVA_OPTION_VARIABLES]
    collector = "" if any(_GC_OPTION.search(options) for options in [asked, *elsewhere]) else DEFAULT_GC
    java_options = " ".join(
        o for o in (f"-Dlog4j2.configurationFile=file:{log_config}", collector, asked) if o
    )
    return {
        "spark.master": settings.spark_master,
        "spark.app.name": "costlake",
        "spark.driver.memory": _driver_memory(settings),
        "spark.driver.extraJavaOptions": java_options,
        "spark.log.structuredLogging.enabled": "false",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.warehouse.dir": str(scratch / "spark-warehouse"),
        "spark.local.dir": str(scratch / "local"),
        "spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs": "false",
        **SESSION_SQL_CONF,
        **extra,
    }


def _driver_memory(settings: Settings) -> str:
    """The driver heap a session this process starts asks for: the setting, or the machine's
    default (spark_memory.py)."""
    return settings.spark_driver_memory or default_driver_memory()


def _release(frame: DataFrame) -> None:
    """Drop a local checkpoint's blocks now rather than when the JVM collects the RDD."""
    plan = frame._jdf.queryExecution().logical()  # a LogicalRDD over the checkpointed RDD
    with contextlib.suppress(Exception):
        plan.rdd().unpersist(False)


class SparkEngine(Engine):
    name = "spark"
    dialect = SPARK

    def __init__(self, settings: Settings, temp_dir: Path) -> None:
        super().__init__(settings, temp_dir)
        self.spark = spark_session(settings).newSession()
        # A child session starts from the context's properties, which hold the `spark_conf` of
        # whichever settings started the process: reset the SQL ones this engine did not ask for.
        for key in _ROOT_CONF.keys() - settings.spark_conf.keys():
            if self.spark.conf.isModifiable(key):
                self.spark.conf.unset(key)
        sql_conf = {
            **SESSION_SQL_CONF,
            "spark.sql.shuffle.partitions": str(settings.spark_shuffle_partitions),
            **settings.spark_conf,
        }
        for key, value in sql_conf.items():
            if self.spark.conf.isModifiable(key):
                self.spark.conf.set(key, value)
        self._checkpoints: dict[str, DataFrame] = {}
        self._views: set[str] = set()

    @contextlib.contextmanager
    def _job(self) -> Iterator[None]:
        """Runs Spark jobs; one that fails in the JVM ends as costlake's one-line error
        (spark_failures.py)."""
        try:
            yield
        except Exception as exc:
            error = failure(exc, self._memory())
            if error is None:
                raise
            raise error from exc

    def _memory(self) -> Memory:
        """The memory a job of this session runs in, and what raises it."""
        ours = "spark_driver_memory (COSTLAKE_SPARK_DRIVER_MEMORY), or run it on a cluster"
        try:
            context = self.spark.sparkContext
            conf, master = context.getConf(), str(context.master)
        except Exception:  # a JVM that died of it
            return Memory(f"a {_driver_memory(self.settings)} driver", ours)
        if not master.startswith("local"):
            size = conf.get("spark.executor.memory", "1g")
            return Memory(f"{size} executors", "spark.executor.memory (spark_conf, or the launcher's)")
        driver = f"a {conf.get('spark.driver.memory', '1g')} driver"
        return Memory(driver, "the launcher's --driver-memory" if any(_LAUNCHED) else ours)

    @staticmethod
    def _schema(schema: pa.Schema) -> Any:
        from pyspark.sql.pandas.types import from_arrow_schema

        return from_arrow_schema(schema, prefer_timestamp_ntz=True)

    def _view(self, name: str, frame: DataFrame) -> None:
        frame.createOrReplaceTempView(name)
        self._views.add(name)

    def register_files(self, name: str, files: Sequence[str], schema: pa.Schema) -> None:
        if not files:
            self.register_arrow(name, schema.empty_table())
            return
        # The table's schema, never inference; and no partition discovery from folder names such
        # as `usage_date=…`: every file carries its own columns.
        frame = (
            self.spark.read.schema(self._schema(schema))
            .option("recursiveFileLookup", "true")
            .parquet(*files)
            .select(*schema.names)
        )
        self._view(name, frame)

    def register_arrow(self, name: str, table: pa.Table) -> None:
        self._view(name, self.spark.createDataFrame(table, schema=self._schema(table.schema)))

    def materialize(self, name: str, sql: str) -> None:
        from pyspark import StorageLevel

        # A local checkpoint computes the result once and cuts its lineage: later queries plan
        # against a plain scan of it, not the whole chain of stages (planning the gate over
        # cached stages took longer than running it). Losing an executor fails the run, before
        # anything is committed.
        with self._job():
            frame = self.spark.sql(sql).localCheckpoint(eager=True, storageLevel=StorageLevel.MEMORY_AND_DISK)
        self._view(name, frame)
        previous = self._checkpoints.pop(name, None)
        if previous is not None:
            _release(previous)
        self._checkpoints[name] = frame

    def release(self, name: str) -> None:
        self.spark.catalog.dropTempView(name)
        self._views.discard(name)
        previous = self._checkpoints.pop(name, None)
        if previous is not None:
            _release(previous)

    def fetch(self, sql: str) -> pa.Table:
        with self._job():
            return self.spark.sql(sql).toArrow()

    def write_partitions(self, sql: str, out_dir: Path, partition_by: str) -> list[str]:
        from pyspark.sql.functions import col

        out_dir.mkdir(parents=True, exist_ok=True)
        frame = self.spark.sql(sql)
        copy = COPY_PREFIX + partition_by
        if partition_by not in frame.columns or copy in frame.columns:
            raise ValueError(f"cannot partition columns {frame.columns} by {partition_by!r} via {copy!r}")
        # All rows of a date in one task, so one file per date; `partitionBy` drops the copy from
        # the files and keeps the column itself, in the select's order and types.
        with self._job():
            (
                frame.withColumn(copy, col(partition_by))
                .repartition(copy)
                .write.mode("append")
                .partitionBy(copy)
                .parquet(str(out_dir))
            )
        for junk in [*out_dir.rglob(".*.crc"), *out_dir.glob("_SUCCESS")]:  # checksums, job marker
            junk.unlink()
        return sorted(str(p) for p in out_dir.rglob("*.parquet"))

    def close(self) -> None:
        for frame in self._checkpoints.values():
            _release(frame)
        self._checkpoints.clear()
        for name in self._views:
            self.spark.catalog.dropTempView(name)
        self._views.clear()


register_engine("spark", SparkEngine)
