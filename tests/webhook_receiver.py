"""A real webhook receiver for the alerts tests: a ThreadingHTTPServer on 127.0.0.1 (port 0) in a
thread, answering each POST with the next scripted status (200 once the script runs out), after an
optional delay, and keeping what it was sent."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    path: str = ""

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def event(self) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(self.body)
        return found


@dataclass
class Receiver:
    url: str
    script: list[tuple[int, float]] = field(default_factory=list)  # (status, seconds to wait first)
    received: list[Received] = field(default_factory=list)
    misbehave: str = ""  # "trickle": a header line every 0.2 s forever; "huge": 200 with a 50 MB body
    written: int = 0  # bytes of a "huge" body the client took before it hung up

    def answer(self, *statuses: int, delay: float = 0.0) -> None:
        self.script += [(s, delay) for s in statuses]

    def clear(self) -> None:
        self.received.clear()
        self.script.clear()
        self.misbehave, self.written = "", 0


@contextmanager
def receiver() -> Iterator[Receiver]:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            with lock:
                status, delay = state.script.pop(0) if state.script else (200, 0.0)
                sent = {k.lower(): v for k, v in self.headers.items()}
                state.received.append(Received(sent, body, self.path))
            time.sleep(delay)
            if state.misbehave:
                self._misbehave(state.misbehave)
                return
            try:
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()
            except OSError:  # the client gave up (a timeout test)
                pass

        def _misbehave(self, how: str) -> None:
            try:
                self.send_response(200)
                if how == "trickle":
                    for n in range(600):  # two minutes of headers, each well within any read timeout
                        self.send_header(f"x-trickle-{n}", "1")
                        self.flush_headers()
                        time.sleep(0.2)
                    return
                self.send_header("content-length", str(50 * 2**20))
                self.end_headers()
                chunk = b"x" * 2**16
                for _ in range(50 * 16):  # generated lazily: 50 MB the client should not read
                    self.wfile.write(chunk)
                    state.written += len(chunk)
            except OSError:  # the client hung up: what it should do
                pass

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state = Receiver(f"http://127.0.0.1:{server.server_address[1]}/hook")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def verify(secret: str, got: Received, tolerance_s: int = 300) -> bool:
    """What a receiver does, in the standard library only (docs/alerts.md shows the same lines)."""
    msg_id, stamp = got.headers["webhook-id"], got.headers["webhook-timestamp"]
    if abs(time.time() - int(stamp)) > tolerance_s:
        return False  # a replay, or a clock far off
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{stamp}.".encode() + got.body, hashlib.sha256).digest()
    expected = base64.b64encode(mac).decode()
    sent = [s.split(",", 1)[1] for s in got.headers["webhook-signature"].split() if s.startswith("v1,")]
    return any(hmac.compare_digest(expected, s) for s in sent)
