"""The `costlake` command line: one typer sub-app per command group, composed here.

Exit codes: 0 success; 1 usage or input error (one line, no traceback); 2 a quality gate held back at
least one partition; 3 any other failure; 130 / 143 interrupted by SIGINT / SIGTERM. Nothing in the
package imports the CLI.
"""

from __future__ import annotations

import builtins
import os
import signal
import sys
import threading
import traceback
from types import FrameType
from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

try:  # typer >= 0.24 carries its own copy of click
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - older typer on the real click
    from click import exceptions as click_exceptions  # type: ignore[no-redef]

from costlake.cli import alerts, anomalies, explain, lake, maintain, runs, serve, synthetic, tenants
from costlake.cli.context import err, state
from costlake.errors import OUT_OF_MEMORY_HINT, CostlakeError, LakeError, first_line
from costlake.lake.faults import crash_point
from costlake.logs import LOG_FORMATS, configure_logging, error_line, exit_interrupted, json_logs_asked
from costlake.text.terminal import capped_line, escape_controls


class _Commands(TyperGroup):
    """The command group. No command prompts, so an EOFError is a file that ended too early under a
    library (PyIceberg reading a truncated Avro manifest): click takes any EOFError for Ctrl-D at a
    prompt and aborts, which was reported as `interrupted` (exit code 130) after an empty line."""

    def invoke(self, ctx: Any) -> Any:  # noqa: ANN401 - click's signature
        try:
            return super().invoke(ctx)
        except EOFError as exc:
            raise LakeError(
                f"a file being read is shorter than its contents say ({first_line(exc)}): a file of "
                "the warehouse may be truncated or damaged; rerun with --debug to see which"
            ) from exc


app = typer.Typer(
    cls=_Commands,
    help="costlake: finance-grade cloud-cost lake on Apache Iceberg.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(lake.app)
app.add_typer(tenants.app, name="tenants")
app.add_typer(anomalies.app)
app.add_typer(explain.app)
app.add_typer(synthetic.app)
app.add_typer(serve.app)
app.add_typer(alerts.app, name="alerts")
app.add_typer(runs.app, name="runs")
app.add_typer(maintain.app)


_Debug = Annotated[
    bool, typer.Option("--debug", help="Show the traceback of an error (after its one-line message).")
]


def _show_version(asked: bool) -> None:
    if asked:
        from costlake import __version__

        typer.echo(f"costlake {__version__}")
        raise typer.Exit()


_Version = Annotated[
    bool,
    typer.Option(
        "--version", callback=_show_version, is_eager=True, help="Show costlake's version and exit."
    ),
]
_Quiet = Annotated[
    bool,
    typer.Option(
        "--quiet",
        "-q",
        help="No progress bars. Long commands (ingest, run, backfill, anomalies, index) draw them on "
        "stderr only when it is a terminal.",
    ),
]


@app.callback()
def _global(
    warehouse: Annotated[
        str | None,
        typer.Option(
            "--warehouse", "-w", help="Warehouse folder (env COSTLAKE_WAREHOUSE; default ./warehouse)."
        ),
    ] = None,
    engine: Annotated[
        str | None,
        typer.Option(
            "--engine", help="Compute engine: duckdb or spark (env COSTLAKE_ENGINE; default duckdb)."
        ),
    ] = None,
    log_level: Annotated[
        str | None,
        typer.Option(
            "--log-level",
            help="debug, info, warning or error (env COSTLAKE_LOG_LEVEL; default warning); logs go to "
            "stderr.",
        ),
    ] = None,
    log_format: Annotated[
        str | None,
        typer.Option(
            "--log-format",
            help="text or json: one JSON object per line, with each phase's duration "
            "(env COSTLAKE_LOG_FORMAT; default text).",
        ),
    ] = None,
    lock_timeout: Annotated[
        float | None,
        typer.Option(
            "--lock-timeout",
            help="Seconds a writing command waits for another one to release the warehouse "
            "(env COSTLAKE_LOCK_TIMEOUT_SECONDS; default 600); then it stops with exit code 1.",
        ),
    ] = None,
    debug: _Debug = False,
    quiet: _Quiet = False,
    version: _Version = False,  # handled by its callback, before any other option
) -> None:
    state.debug, state.quiet = debug, quiet
    state.overrides = {
        "warehouse": warehouse,
        "engine": engine,
        "log_level": log_level,
        "lock_timeout_seconds": lock_timeout,
    }
    if log_format is not None:
        state.overrides["log_format"] = log_format
    state.log_json = log_format == "json"  # before the settings: their own errors follow it too
    if _help_asked():
        return  # `COMMAND --help` reads no settings (pydantic-settings is a third of its start-up)
    settings = state.settings()
    state.log_json = settings.log_format == "json"
    configure_logging(settings.log_level, settings.log_format)


def _help_asked() -> bool:
    """Whether this invocation asks a command for its help (click shows it after this callback)."""
    args = sys.argv[1:]
    cut = args.index("--") if "--" in args else len(args)
    return "--help" in args[:cut]


class Interrupted(BaseException):
    """Raised in the main thread when SIGINT or SIGTERM arrives. A BaseException, so no `except
    Exception` on the way up swallows it; `finally` blocks (the writer lock, temp folders) still run."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_received: list[int] = []


FORCE_AFTER = 3  # signals: the one that makes a command stop at once, clean-up or not


def _on_signal(signum: int, frame: FrameType | None) -> None:
    """The first signal stops the command; the next (a second Ctrl-C, or a SIGTERM pending beside
    the SIGINT, whose handler Python runs at its next check, even inside a `finally`) is noted
    only, so the clean-up the first one started is not cut short. A third ends the process at once,
    as a crash would (the next command finishes or undoes what was left; a lock held in a lease
    expires): for a clean-up that hangs, say on an unreachable object store.

    A first signal that comes while a module is being imported is raised once the import is over
    (`_import_then_stop`): an exception raised inside a native module's initialisation (DuckDB's,
    whose commands import it on first use) aborts the process with a traceback and exit 134."""
    if _imports[2] and signum == _imports[1]:  # the held signal, sent again (`_send_again`)
        _imports[2] = 0
        if _imports[0] or _importing(frame):
            _send_again()
            return
        _imports[1] = 0
        raise Interrupted(signum)
    _received.append(signum)
    if len(_received) == 1:
        if _imports[0] or _importing(frame):
            _imports[1] = signum
            _send_again()
            return
        raise Interrupted(signum)
    if len(_received) >= FORCE_AFTER:
        exit_interrupted(128 + _received[0], state.log_json)


_IMPORT_SYSTEM = frozenset({"<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>"})
# The main thread's imports under way; the signal held back until they are over; whether it was sent
# again (a module loaded by `importlib.import_module` has no import statement whose end raises it)
_imports = [0, 0, 0]
RESEND_AFTER = 0.05  # seconds


def _send_again() -> None:
    """Send the held signal to the main thread again shortly, to be raised there if no import is
    under way by then (`_import_then_stop` may raise it first: then this finds nothing held)."""

    def send() -> None:
        if _imports[1]:
            _imports[2] = 1
            signal.pthread_kill(threading.main_thread().ident or 0, _imports[1])

    timer = threading.Timer(RESEND_AFTER, send)
    timer.daemon = True
    timer.start()


def _importing(frame: FrameType | None) -> bool:
    while frame is not None:
        if frame.f_code.co_filename in _IMPORT_SYSTEM:
            return True
        frame = frame.f_back
    return False


_import = builtins.__import__


def _import_then_stop(*args: Any, **kwargs: Any) -> Any:
    """`__import__` for the main thread: a first signal held back while it ran is raised as soon as
    the outermost import is over (one held in a module loaded by `importlib.import_module`, whose
    frames are the import system's, by the next import statement or `_send_again`)."""
    if threading.current_thread() is not threading.main_thread():
        return _import(*args, **kwargs)
    _imports[0] += 1
    try:
        return _import(*args, **kwargs)
    finally:
        _imports[0] -= 1
        held = _imports[1]
        if held and not _imports[0] and not _importing(sys._getframe()):
            _imports[1] = 0
            raise Interrupted(held)


def _fail(message: str, code: int) -> NoReturn:
    crash_point("exit_line")
    # One line of plain text, never a flood (a file's name or value may be quoted in it): control, format
    # and unpaired surrogate characters escaped (`\n`, `\x1b`, `\u202e`, `\udcff`), then cut, so that
    # what is written is at most the cap however many characters the escapes took.
    message = capped_line(escape_controls(message))
    if state.log_json:
        sys.stderr.write(error_line(message, code, as_json=True) + "\n")
    else:
        err.print(message, markup=False, highlight=False, soft_wrap=True)
    if state.exit_at_once:
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def main() -> None:
    """Entry point: map every outcome to an exit code and at most one line on stderr.

    0 success; 1 usage or input error; 2 a quality gate held back a day; 3 an internal failure;
    130 / 143 interrupted by SIGINT / SIGTERM. `--debug` adds the traceback of an error."""
    state.log_json = json_logs_asked(sys.argv[1:])  # until the settings say (an interrupt may come first)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _on_signal)
    builtins.__import__ = _import_then_stop
    try:
        try:
            app(standalone_mode=False)
            if _received:  # the interrupt was swallowed on its way (a finalizer): it still happened
                raise Interrupted(_received[0])
        except BaseException as exc:  # noqa: BLE001 - this is the one place that decides how we exit
            _exit_for(exc)
    finally:
        # The command is over and its exit code decided. Python's shutdown puts back the default
        # handlers of the ones it did not ignore, so a signal in those last milliseconds would kill the
        # process without a word and hide that code: ignore them from here on.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)
    crash_point("exiting")
    sys.exit(0)


def _interrupted() -> str:
    """The line of an interrupted command: `interrupted`, then what it had done when a command says."""
    return f"interrupted: {state.interrupt_note}" if state.interrupt_note else "interrupted"


def _exit_for(exc: BaseException) -> NoReturn:
    # From here the exit code is being decided: a signal now (a second Ctrl-C, a supervisor's SIGTERM
    # while the line is written) must neither cut the line short nor turn it into a traceback.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
    if isinstance(exc, SystemExit):
        raise exc
    if _received:  # whatever surfaced (ours, or a library's "query interrupted"), it was the signal
        _fail(_interrupted(), 128 + _received[0])
    if state.debug and not isinstance(exc, typer.Exit | click_exceptions.NoArgsIsHelpError):
        traceback.print_exception(exc, file=sys.stderr)
    if isinstance(exc, typer.Exit):
        sys.exit(exc.exit_code)
    if isinstance(exc, click_exceptions.NoArgsIsHelpError):
        sys.exit(0)  # the help was shown: that is what was asked for
    if isinstance(exc, typer.Abort | KeyboardInterrupt):
        _fail(_interrupted(), 130)
    if isinstance(exc, click_exceptions.ClickException):
        _fail(f"error: {exc.format_message()}", 1)
    if isinstance(exc, CostlakeError):
        _fail(f"error: {exc}", exc.exit_code)
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        _fail(f"error: {where}{exc.strerror or exc}", 1)
    first = (str(exc).strip().splitlines() or [""])[0]
    if type(exc).__name__ == "IOException" and "duckdb" in type(exc).__module__:
        # A data file a table lists is gone or unreadable (deleted by hand, a disk fault): not a bug.
        _fail(f"error: a file of the warehouse cannot be read ({first}); restore it from a copy", 3)
    if type(exc).__name__ == "OutOfMemoryException" and "duckdb" in type(exc).__module__:
        # Not a bug: the work needed more memory than DuckDB's limit, or more temp space to spill to.
        _fail(f"error: DuckDB ran out of memory or of temp space to spill ({first}); {OUT_OF_MEMORY_HINT}", 1)
    _fail(f"error: internal error ({type(exc).__name__}: {first}); rerun with --debug for the traceback", 3)


__all__ = ["LOG_FORMATS", "app", "main"]
