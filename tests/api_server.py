"""The real app over HTTP for the API tests: a uvicorn server on 127.0.0.1 in a thread (`serve`, `stop`)
and a client with keys (`Served`); the fixtures `indexed_lake` (the two-tenant lake of
tests/two_tenants.py, indexed) and `served` (it, served, with a key per tenant and an admin key),
registered for every test by tests/conftest.py (`pytest_plugins`)."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import uvicorn

from costlake.api.app import create_app
from costlake.lake.api_keys import KeyStore
from costlake.lake.warehouse import Warehouse
from costlake.rag.indexer import build_index
from costlake.settings import Settings
from two_tenants import build_lake


@dataclass
class Served:
    url: str
    wh: Warehouse
    keys: dict[str, str]  # "team-a", "team-b", "admin" -> key
    store: KeyStore
    server: uvicorn.Server

    def get(self, path: str, key: str | None = None, **kwargs: Any) -> requests.Response:
        return requests.get(
            self.url + path, headers=_auth(key, kwargs.pop("headers", {})), timeout=30, **kwargs
        )

    def post(self, path: str, key: str | None = None, **kwargs: Any) -> requests.Response:
        return requests.post(
            self.url + path, headers=_auth(key, kwargs.pop("headers", {})), timeout=30, **kwargs
        )


def _auth(key: str | None, headers: dict[str, str]) -> dict[str, str]:
    return {**headers, "Authorization": f"Bearer {key}"} if key else headers


def serve(settings: Settings, **options: Any) -> tuple[uvicorn.Server, threading.Thread, str]:
    """A uvicorn server of the app on a free port of 127.0.0.1, in a thread; its base URL."""
    config = uvicorn.Config(
        create_app(settings, **options), host="127.0.0.1", port=0, log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, thread, f"http://127.0.0.1:{port}"


def free_port() -> int:
    """A port of 127.0.0.1 that nothing listens on now (for a server process the test starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_up(url: str, process: subprocess.Popen[str], output: Callable[[], str]) -> None:
    """Wait (90 s at most) until the server process at `url` answers /health; fail with its
    `output()` if it exits first."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert process.poll() is None, output()
        try:
            if requests.get(url + "/health", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise AssertionError("the server did not start")


def stop(server: uvicorn.Server, thread: threading.Thread) -> None:
    server.should_exit = True
    thread.join(timeout=30)


@pytest.fixture(scope="session")
def indexed_lake(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    wh = build_lake(tmp_path_factory.mktemp("api"))
    build_index(wh)
    return wh


@pytest.fixture(scope="session")
def served(indexed_lake: Warehouse) -> Iterator[Served]:
    settings = indexed_lake.settings.model_copy(update={"api_rate_limit": 0.0})
    store = KeyStore.for_settings(settings, indexed_lake.root)
    keys = {t: store.add(t)[1] for t in ("team-a", "team-b")}
    keys["admin"] = store.add(None, admin=True)[1]
    server, thread, url = serve(settings)
    try:
        yield Served(url, indexed_lake, keys, store, server)
    finally:
        stop(server, thread)
