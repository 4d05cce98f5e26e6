"""`costlake serve` as a user starts it: a real process with two workers, keys from `costlake tenants
add-key`, metrics summed over the workers, and a stop by signal with the usual exit codes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from api_server import free_port, wait_until_up
from costlake.lake.warehouse import Warehouse
from costlake.rag.indexer import build_index
from helpers import cli
from two_tenants import A1, A2, B1, build_lake


def _start(wh: Path, port: int, *args: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "costlake", "--warehouse", str(wh), "serve", "--port", str(port), *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_serve_with_two_workers_then_stop_by_signal(lake: Warehouse, stop: signal.Signals) -> None:
    added = cli(lake.root, "tenants", "add-key", "team-a")
    assert added.returncode == 0, added.stderr
    key = added.stdout.strip().splitlines()[-1]
    port = free_port()
    process = _start(lake.root, port, "--workers", "2")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, process, lambda: process.communicate()[1])
        headers = {"Authorization": f"Bearer {key}"}
        for _ in range(6):  # spread over both workers
            found = requests.get(url + "/accounts", headers=headers, timeout=30).json()["data"]
            assert {a["account_id"] for a in found} == {A1, A2}
        assert (
            requests.get(
                url + "/anomalies", headers=headers, params={"account_id": B1}, timeout=30
            ).status_code
            == 404
        )
        metrics = requests.get(url + "/metrics", timeout=30).text
        line = next(
            m
            for m in metrics.splitlines()
            if m.startswith("costlake_http_requests_total{") and "/accounts" in m
        )
        assert float(line.rsplit(" ", 1)[1]) == 6.0  # every worker's count, summed
    finally:
        process.send_signal(stop)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + stop
    lines = [line for line in stderr.splitlines() if '"costlake.api.access"' not in line]
    assert lines[-1] == "interrupted" and "Traceback" not in stderr
    assert key not in stderr


def test_an_address_in_use_is_one_line_and_exit_code_1(lake: Warehouse) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = cli(lake.root, "serve", "--port", str(port))
    assert done.returncode == 1
    assert done.stderr.strip() == f"error: cannot listen on 127.0.0.1:{port}: Address already in use"


@pytest.mark.slow
def test_two_sigints_let_the_request_in_flight_finish(lake: Warehouse) -> None:
    """uvicorn force-quits on a second SIGINT, cancelling the requests in flight (each a 500 and a
    traceback); `serve` lets them finish. The request here is held in flight by its body, sent in
    two halves around the signals."""
    key = cli(lake.root, "tenants", "add-key", "team-a").stdout.strip().splitlines()[-1]
    port = free_port()
    process = _start(lake.root, port)
    answer = b""
    try:
        wait_until_up(f"http://127.0.0.1:{port}", process, lambda: process.communicate()[1])
        answer = _answer_across_signals(port, key, lambda: process.send_signal(signal.SIGINT))
    finally:
        if not answer:  # failed before the answer: nothing to wait for
            process.kill()
        _, stderr = process.communicate(timeout=60)
    status = answer.split(b"\r\n", 1)[0]
    assert status == b"HTTP/1.1 200 OK", answer[:300]
    assert b'"grounded":true' in answer
    assert process.returncode == 128 + signal.SIGINT
    lines = [line for line in stderr.splitlines() if '"costlake.api.access"' not in line]
    assert lines[-1] == "interrupted" and "Traceback" not in stderr, stderr


def _answer_across_signals(port: int, key: str, signal_it: Callable[[], None]) -> bytes:
    """The raw answer to a POST /explain held in flight by its body, sent in two halves with two
    signals (`signal_it`) between them."""
    body = b'{"query": "total cost last month"}'
    head = (
        f"POST /explain HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as client:
        client.sendall(head + body[:10])
        time.sleep(0.5)  # the application is reading the body
        for _ in range(2):
            signal_it()
            time.sleep(0.3)
        client.sendall(body[10:])
        while chunk := client.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize("workers", ["1", "2"])
def test_with_json_logs_uvicorns_own_lines_are_json_too(lake: Warehouse, workers: str) -> None:
    """A request line too long to parse made uvicorn print `Invalid HTTP request received.` as bare
    text between the JSON lines (in every worker)."""
    port = free_port()
    command = [sys.executable, "-m", "costlake", "--warehouse", str(lake.root), "--log-format", "json"]
    process = subprocess.Popen(
        [*command, "serve", "--port", str(port), "--workers", workers],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_up(url, process, lambda: process.communicate()[1])
        assert requests.get(url + "/health", params={"x": "a" * 70_000}, timeout=30).status_code == 400
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    logged = [json.loads(line) for line in stderr.splitlines()]  # every line is JSON, the banner too
    assert logged[0]["message"].startswith("serving ")
    assert any(r["logger"] == "uvicorn.error" and "Invalid HTTP request" in r["message"] for r in logged)


@pytest.mark.slow
def test_a_stop_is_bounded_when_a_request_waits_on_a_model_that_does_not_answer(tmp_path: Path) -> None:
    """A question waiting on a model that never answers ran in a thread the stop could not cancel: at
    the end of the grace period the client got a plain-text 500 and stderr a 40-line traceback, and the
    process waited for the model's timeouts (90 s). Now: a 503, one line, and a prompt exit."""
    lake = build_lake(tmp_path)
    build_index(lake)  # a "why" question retrieves, then asks the model
    key = cli(lake.root, "tenants", "add-key", "team-a").stdout.strip().splitlines()[-1]
    asked = threading.Event()

    class Silent(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # a model that takes the question and never answers
            asked.set()
            time.sleep(120)

    model = ThreadingHTTPServer(("127.0.0.1", 0), Silent)
    model.daemon_threads = True
    threading.Thread(target=model.serve_forever, daemon=True).start()
    port = free_port()
    env = {
        **os.environ,
        "COSTLAKE_LLM_PROVIDER": "openai",
        "COSTLAKE_LLM_BASE_URL": f"http://127.0.0.1:{model.server_address[1]}/v1",
        "OPENAI_API_KEY": "test",
        "COSTLAKE_LLM_TIMEOUT_SECONDS": "100",
        "COSTLAKE_API_SHUTDOWN_GRACE_SECONDS": "1",
    }
    command = [sys.executable, "-m", "costlake", "--warehouse", str(lake.root), "serve", "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    url = f"http://127.0.0.1:{port}"
    answers: list[requests.Response] = []
    try:
        wait_until_up(url, process, lambda: process.communicate()[1])
        question = {"query": "why did EC2 spend jump?"}
        client = threading.Thread(
            target=lambda: answers.append(
                requests.post(url + "/explain", json=question, headers={"Authorization": f"Bearer {key}"})
            )
        )
        client.start()
        assert asked.wait(30)
        started = time.monotonic()
        for _ in range(2):
            process.send_signal(signal.SIGINT)
            time.sleep(0.2)
        _, stderr = process.communicate(timeout=30)
        stopped = time.monotonic() - started
        client.join(30)
    finally:
        if process.poll() is None:
            process.kill()
        model.shutdown()
    assert stopped < 10  # the grace (1 s) and a second for idle threads, not the model's 100 s
    assert answers and answers[0].status_code == 503
    assert answers[0].headers["content-type"] == "application/problem+json"
    assert process.returncode == 130 and "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if '"costlake.api.access"' not in line]
    assert lines[-1] == "interrupted", stderr


@pytest.mark.slow
def test_a_double_ctrl_c_to_every_worker_lets_the_request_in_flight_finish(lake: Warehouse) -> None:
    """A terminal's double Ctrl-C reaches the supervisor and every worker (one process group): the
    workers, uvicorn's own server, force-quit on the second one and cancelled the requests."""
    key = cli(lake.root, "tenants", "add-key", "team-a").stdout.strip().splitlines()[-1]
    port = free_port()
    command = [sys.executable, "-m", "costlake", "--warehouse", str(lake.root), "serve", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--workers", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    answer = b""
    try:
        wait_until_up(f"http://127.0.0.1:{port}", process, lambda: process.communicate()[1])
        answer = _answer_across_signals(port, key, lambda: os.killpg(process.pid, signal.SIGINT))
    finally:
        if not answer:
            os.killpg(process.pid, signal.SIGKILL)
        _, stderr = process.communicate(timeout=60)
    assert answer.split(b"\r\n", 1)[0] == b"HTTP/1.1 200 OK", answer[:300]
    assert process.returncode == 128 + signal.SIGINT and "Traceback" not in stderr, stderr
