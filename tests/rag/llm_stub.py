"""A real HTTP server on 127.0.0.1 for LLM provider tests: it answers each POST with a scripted reply, or
with what `respond` computes from the request, and records every request (path, headers, JSON body).

Nothing of ours or of the SDKs is mocked: the providers talk HTTP to it like to OpenAI or Ollama.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    body: dict[str, Any] = field(default_factory=dict)
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class StubServer:
    """Answers each POST with the next scripted reply (the last one repeats) and records the requests."""

    replies: list[Reply]
    #: computes the reply from the request instead of the script, when set
    respond: Callable[[dict[str, Any]], Reply] | None = None
    port: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def next_reply(self, request: dict[str, Any]) -> Reply:
        self.requests.append(request)
        if self.respond is not None:
            return self.respond(request)
        return self.replies[min(len(self.requests), len(self.replies)) - 1]


@contextmanager
def stub_server(
    *replies: Reply, respond: Callable[[dict[str, Any]], Reply] | None = None
) -> Iterator[StubServer]:
    stub = StubServer(list(replies), respond)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            size = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(size) or b"{}")
            headers = {name.lower(): value for name, value in self.headers.items()}
            reply = stub.next_reply({"path": self.path, "headers": headers, "json": body})
            if reply.delay:
                stub.release.wait(reply.delay)
            payload = json.dumps(reply.body).encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: Any, client_address: Any) -> None:  # clients that timed out and left
            pass

    server = Server(("127.0.0.1", 0), Handler)
    stub.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        stub.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def chat_completion(text: str) -> dict[str, Any]:
    """An OpenAI chat completion body answering `text`."""
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "llama3.2",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
