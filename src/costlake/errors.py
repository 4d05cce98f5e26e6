"""One root exception; the CLI maps each kind to an exit code and prints it on one line.

Input errors say what was wrong, where (file, row, column) and what to do about it.
"""

from __future__ import annotations


class CostlakeError(Exception):
    """Root of every error costlake raises on purpose."""

    exit_code = 3


class Transient(Exception):
    """Marker mixin: the same call may succeed later (timeout, refused connection, 429, 5xx). Retry it."""


class Terminal(Exception):
    """Marker mixin: repeating the call cannot help (bad key, bad request, unknown model). Do not retry."""


class InputError(CostlakeError):
    """The user's input (a file, a flag, a setting) cannot be used. Exit code 1."""

    exit_code = 1


class ConfigError(InputError):
    """A setting is missing or invalid."""


class NotReady(ConfigError):
    """Something an operator must build first (e.g. the explanation index). `public` says so to a
    caller who is not the operator, without paths or commands."""

    public = "the service is not ready to answer this yet"


class GateFailure(CostlakeError):
    """A quality gate held back at least one partition. Exit code 2."""

    exit_code = 2


class LakeError(CostlakeError):
    """The lake (catalog, storage) is not in a state costlake can work with."""


# What to do when DuckDB runs out of memory, or of temp space to spill to (it then says "failed to
# offload"): the machine's limit, not a bug.
OUT_OF_MEMORY_HINT = (
    "raise duckdb_memory_limit (COSTLAKE_DUCKDB_MEMORY_LIMIT) or free space in the temp folder"
)


def first_line(exc: BaseException) -> str:
    """The first non-blank line of an exception's message, or its type's name: what a one-line error
    quotes of a library's multi-line message.

    >>> first_line(ValueError("\\nbad value\\nat line 3")), first_line(KeyError())
    ('bad value', 'KeyError')
    """
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
