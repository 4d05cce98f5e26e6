"""A failed Spark job as costlake's one line: what the JVM reported, and what to do when it ran out of
memory.

PySpark raises a JVM's error as `Py4JJavaError`, whose first line only names the call ("An error
occurred while calling o250.getResult."); the JVM's own exception follows on the next line, and a
job that failed in a task names the task's exception after "most recent failure: Lost task …: ".
Spark's loggers, which would print each failed task's stack, are off (spark_engine.LOG4J2): the line
made here is what the user sees, and `--debug` prints the whole chain.

>>> memory = Memory("a 2g driver", "its setting")
>>> call = "An error occurred while calling o250.getResult.\\n: org.apache.spark.SparkException: Job aborted"
>>> lost = "most recent failure: Lost task 0.0 in stage 73.0 (TID 111) (host executor driver)"
>>> oom = "org.apache.spark.memory.SparkOutOfMemoryError: [UNABLE_TO_ACQUIRE_MEMORY] Unable to acquire"
>>> print(failure(RuntimeError(f"{call}: {lost}: {oom}\\n\\tat ..."), memory))
the Spark engine ran out of memory (UNABLE_TO_ACQUIRE_MEMORY) with a 2g driver: give it more with its setting
>>> read = "org.apache.spark.SparkException: [FAILED_READ_FILE.NO_HINT] Cannot read x"
>>> print(failure(RuntimeError(f"{call}: {lost}: {read}"), memory))
the Spark engine's job failed: [FAILED_READ_FILE.NO_HINT] Cannot read x (--debug: the JVM's stack)
>>> print(failure(RuntimeError("o9.toArrow.\\n: java.lang.OutOfMemoryError: Java heap space"), memory))
the Spark engine ran out of memory (Java heap space) with a 2g driver: give it more with its setting

A value quoted inside another error is not taken for the exception:

>>> quoted = "[CAST_INVALID_INPUT] The value 'x: java.lang.OutOfMemoryError: Java heap space' cannot be cast"
>>> cast = RuntimeError(f"o7.getResult.\\n: org.apache.spark.SparkRuntimeException: {quoted}")
>>> str(failure(cast, memory))[:45]
'the Spark engine failed: [CAST_INVALID_INPUT]'
>>> failure(ValueError("not from the JVM"), memory) is None
True
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from costlake.errors import ConfigError, CostlakeError

# A task's exception: Spark's "… most recent failure: Lost task 0.0 in stage 73.0 (TID 111) (host
# executor driver): <exception>: <message>".
_TASK = re.compile(r"most recent failure: Lost task [^\n]*?\): ([^\n]+)")
# The exception of the call itself, on the line after Py4J's "An error occurred while calling …".
_RAISED = re.compile(r"^: ([^\n]+)", re.MULTILINE)
# Out of memory, as the exception a task or the call failed with (never a value quoted inside one):
# Spark's own error with its condition, or the JVM's heap.
_SPARK_MEMORY = re.compile(r"org\.apache\.spark\.memory\.SparkOutOfMemoryError: \[(\w+)\]")
_HEAP = re.compile(r"java\.lang\.OutOfMemoryError: (Java heap space|GC overhead limit exceeded)")
# A generic wrapper's class before a Spark error condition says nothing the condition does not.
_WRAPPER = re.compile(r"^org\.apache\.spark\.\w*(?:Exception|Error): (?=\[)")


@dataclass(frozen=True)
class Memory:
    """What the memory that ran out was, and what raises it."""

    size: str  # such as "a 2g driver"
    remedy: str  # such as "spark_driver_memory (COSTLAKE_SPARK_DRIVER_MEMORY), or run it on a cluster"


def failure(exc: BaseException, memory: Memory) -> CostlakeError | None:
    """The one-line error for a Spark job that failed in the JVM: out of memory (exit 1, with what
    raises it) or any other failure (exit 3, with the JVM's own first line); None for an error that
    did not come from the JVM."""
    try:
        text = str(exc)
    except Exception:  # the JVM behind a Py4J error may be gone: nothing more to read
        return None
    task = _TASK.search(text)
    raised = _RAISED.search(text)
    lead = task.group(1) if task else raised.group(1) if raised else None
    if lead is None:
        return None
    short = _SPARK_MEMORY.match(lead) or _HEAP.match(lead)
    if short is not None:
        return ConfigError(
            f"the Spark engine ran out of memory ({short.group(1)}) with {memory.size}: "
            f"give it more with {memory.remedy}"
        )
    what = "the Spark engine's job failed" if task else "the Spark engine failed"
    return CostlakeError(f"{what}: {_WRAPPER.sub('', lead)} (--debug: the JVM's stack)")
