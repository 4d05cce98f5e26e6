"""`costlake serve`: the HTTP API (FastAPI on uvicorn), see docs/api.md."""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import warnings
from typing import Annotated, Any

import typer

from costlake.cli.context import err, state
from costlake.errors import ConfigError

app = typer.Typer()


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            help="Worker processes (one per core is a good start). Each loads the index and the model "
            "once, and enforces its share of the per-key rate limit.",
            min=1,
            max=64,
        ),
    ] = 1,
) -> None:
    """Serve the API: POST /explain, GET /anomalies, /costs/daily, /accounts, /series (each tenant sees
    only its own accounts, through the key it sends as `Authorization: Bearer <key>`; see `costlake
    tenants add-key`), the page at / (sign in there with such a key), and the public GET /health,
    /metrics, /docs and /openapi.json.

    One JSON line per request goes to stderr (request id, tenant, route, status, latency).
    Routes, errors, limits and metrics: docs/api.md.

    SIGINT or SIGTERM finishes the requests in flight, then stops (exit code 130 / 143)."""
    try:
        import uvicorn

        from costlake.api.app import WORKERS_ENV, create_app
        from costlake.api.middleware import configure_access_log
        from costlake.api.server import use_graceful_workers, uvicorn_lines_as_ours
    except ImportError as exc:
        extra = "pip install 'costlake[server]'"
        raise ConfigError(f"`costlake serve` needs the server extra: {extra} ({exc.name})") from None
    settings = state.settings()
    _check_address(host, port)
    url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    configure_access_log()
    uvicorn_lines_as_ours()
    _no_unawaited_warning()
    options = _options(host, port, settings.api_shutdown_grace_seconds)
    if workers == 1:
        application = create_app(settings)
        _banner(f"serving {settings.warehouse} on {url} (the page at /, docs at /docs)")
        _serve_one(uvicorn.Config(application, **options))
        return
    # Workers are new processes: they read the same settings from the environment.
    for name, value in settings.model_dump().items():
        if value is not None and state.overrides.get(name) is not None:
            os.environ[f"COSTLAKE_{name.upper()}"] = str(value)
    os.environ[WORKERS_ENV] = str(workers)
    with tempfile.TemporaryDirectory(prefix="costlake-metrics-") as metrics:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics  # the workers' metrics, summed by GET /metrics
        where = f"{url} with {workers} workers"
        _banner(f"serving {settings.warehouse} on {where}")
        use_graceful_workers()
        _supervise(uvicorn.Config("costlake.api.app:factory", factory=True, workers=workers, **options))


def _options(host: str, port: int, grace: float) -> dict[str, Any]:
    """uvicorn's settings: costlake logs the requests, and a stop waits `grace` seconds for those in
    flight, then cancels them (api/server.py)."""
    return {
        "host": host,
        "port": port,
        "log_config": None,
        "access_log": False,
        "server_header": False,
        "timeout_graceful_shutdown": grace,
    }


def _banner(line: str) -> None:
    """The line that says where the server listens: one JSON object with `--log-format json`, whose
    every line on stderr is one, else plain text on one line whatever the terminal's width."""
    if state.log_json:
        sys.stderr.write(json.dumps({"level": "info", "logger": "costlake.cli", "message": line}) + "\n")
    else:
        err.print(line, markup=False, soft_wrap=True)


def _serve_one(config: Any) -> None:
    """One process serving (`api/server.py`): every signal asks for the same graceful stop, bounded
    by `api_shutdown_grace_seconds`; it is raised again once the server has stopped (`interrupted`,
    exit code 130 or 143), and the process then exits without waiting for the threads of cancelled
    requests."""
    from costlake.api.server import GracefulServer, stuck_threads

    server = GracefulServer(config)
    try:
        server.run()
    finally:
        state.exit_at_once = bool(stuck_threads())
    if not server.started:  # uvicorn logged why (the application's start-up failed)
        raise ConfigError("the server did not start (the line above says why)")


def _no_unawaited_warning() -> None:
    """Stopped while uvicorn sets up its event loop, the coroutine it had made is never awaited, and
    Python warns of it (three lines) before the command's one `interrupted` line: not shown."""
    warnings.filterwarnings(
        "ignore", message="coroutine 'Server.serve' was never awaited", category=RuntimeWarning
    )


def _check_address(host: str, port: int) -> None:
    """One clear line (exit code 1) when the address cannot be listened on, instead of uvicorn's log."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _supervise(config: Any) -> None:
    """uvicorn's supervisor of several workers, which stops them all on SIGINT or SIGTERM; the signal
    is then raised again here, so `serve` exits 130 or 143 as every command does when interrupted."""
    from uvicorn.supervisors.multiprocess import Multiprocess

    received: list[int] = []

    class Supervisor(Multiprocess):
        def handle_int(self) -> None:
            received.append(signal.SIGINT)
            super().handle_int()

        def handle_term(self) -> None:
            received.append(signal.SIGTERM)
            super().handle_term()

    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    Supervisor(config, sockets=[config.bind_socket()]).run()
    for sig, handler in handlers.items():
        signal.signal(sig, handler)
    if received:
        signal.raise_signal(received[0])
