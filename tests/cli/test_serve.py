"""`costlake serve` as a user starts it: a real process with two workers, keys from `costlake tenants
add-key`, metrics summed over the workers, and a stop by signal with the usual exit codes."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from api_server import free_port, wait_until_up
from costlake.lake.warehouse import Warehouse
from helpers import cli
from two_tenants import A1, A2, B1


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
    body = b'{"query": "total cost last month"}'
    head = (
        f"POST /explain HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    answer = b""
    try:
        wait_until_up(f"http://127.0.0.1:{port}", process, lambda: process.communicate()[1])
        with socket.create_connection(("127.0.0.1", port), timeout=30) as client:
            client.sendall(head + body[:10])
            time.sleep(0.5)  # the application is reading the body
            for _ in range(2):
                process.send_signal(signal.SIGINT)
                time.sleep(0.3)
            assert process.poll() is None  # still waiting for the request
            client.sendall(body[10:])
            while chunk := client.recv(65536):
                answer += chunk
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


def test_with_json_logs_uvicorns_own_lines_are_json_too(lake: Warehouse) -> None:
    """A request line too long to parse made uvicorn print `Invalid HTTP request received.` as bare
    text between the JSON lines."""
    port = free_port()
    command = [sys.executable, "-m", "costlake", "--warehouse", str(lake.root), "--log-format", "json"]
    process = subprocess.Popen(
        [*command, "serve", "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_up(url, process, lambda: process.communicate()[1])
        assert requests.get(url + "/health", params={"x": "a" * 70_000}, timeout=30).status_code == 400
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    lines = stderr.splitlines()
    assert lines[0].startswith("serving ")
    logged = [json.loads(line) for line in lines[1:]]  # every line after the banner is JSON
    assert any(r["logger"] == "uvicorn.error" and "Invalid HTTP request" in r["message"] for r in logged)
