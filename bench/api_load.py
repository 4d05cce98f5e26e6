"""Load on `costlake serve`: POST /explain from a second process, next to a bare FastAPI floor.

    make bench-api
    .venv/bin/python bench/api_load.py [--seconds 30] [--connections 8] [--workers 2] [--keep DIR]

Builds the lake of `intent_eval.py` (generate, ingest, tenants, run with detection, index: 3 tenants,
about 100 anomalies), makes one API key per tenant, and starts `costlake serve --workers N` on a free
port of 127.0.0.1 with the offline providers and the per-key rate limit set far above the load. Then
`wrk` (Debian's package; `make bench-api` installs it as root) sends POST /explain for 30 s over 8
keep-alive connections, closed loop, rotating through "why did ... change" questions about the
tenants' own anomalies (each with its own tenant's key), after a 5 s warm-up.

The floor, in the same invocation and with the same wrk settings and workers: a FastAPI app on uvicorn
whose POST route parses the same JSON body and answers a small JSON document, i.e. what HTTP,
uvicorn and FastAPI cost before any work. Prints req/s, p50, p99 and errors of both, the ratio, and one
`BENCH {json}` line; exits 1 unless costlake serves at least 200 req/s with p50 <= 15 ms and no
non-2xx answer (the targets of docs/api.md).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from intent_eval import Tenant, build_lake, explain_question

from costlake.lake.api_keys import KeyStore

TARGET_RPS, TARGET_P50_MS = 200.0, 15.0
QUESTIONS = 60

FLOOR_APP = """
from fastapi import FastAPI
from pydantic import BaseModel

class Body(BaseModel):
    query: str
    k: int = 5

app = FastAPI()

@app.post("/explain")
def explain(body: Body) -> dict:
    return {"explanation": body.query, "latency_ms": 0.0, "retrieved_context_count": 0}
"""

LUA = """
local bodies = {%(bodies)s}
local keys = {%(keys)s}
local i = 0
request = function()
  i = i %% #bodies + 1
  return wrk.format("POST", "/explain", {["Content-Type"] = "application/json",
                    ["Authorization"] = "Bearer " .. keys[i]}, bodies[i])
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with code {process.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {seconds:.0f} s")


def lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string is a valid Lua string literal for this text (no \\u escapes)


def wrk(url: str, script: Path, seconds: int, connections: int) -> dict[str, Any]:
    """Run wrk and read its report: req/s, latency percentiles (ms), non-2xx and socket errors."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    text = done.stdout
    found: dict[str, Any] = {"requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", text)[1])}
    for pct in ("50", "75", "90", "99"):
        match = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
        value, unit = float(match[1]), match[2]
        found[f"p{pct}_ms"] = value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    found["non_2xx"] = int(non_2xx[1]) if non_2xx else 0
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    found["socket_errors"] = sum(int(g) for g in errors.groups()) if errors else 0
    found["requests"] = int(re.search(r"(\d+) requests in", text)[1])
    return found


def serve(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb"))


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def measure(
    label: str, command: list[str], env: dict[str, str], script: Path, args: Any, folder: Path
) -> dict[str, Any]:
    port = free_port()
    process = serve([*command, "--port", str(port)], env, folder / f"{label}.log")
    try:
        wait_ready(f"http://127.0.0.1:{port}/openapi.json", process)
        url = f"http://127.0.0.1:{port}/explain"
        wrk(url, script, 5, args.connections)  # warm-up: every worker has answered
        found = wrk(url, script, args.seconds, args.connections)
    finally:
        stop(process)
    print(
        f"{label:9} {found['requests_per_s']:8.1f} req/s  p50 {found['p50_ms']:6.2f} ms  "
        f"p99 {found['p99_ms']:7.2f} ms  non-2xx {found['non_2xx']}  socket errors {found['socket_errors']}",
        flush=True,
    )
    return found


def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    started = time.perf_counter()
    wh, _ = build_lake(folder, "minilm", args.seed)
    print(f"lake built and indexed in {time.perf_counter() - started:.0f} s", flush=True)
    store = KeyStore.for_settings(wh.settings, wh.root)
    tenants = sorted({t for t in ("tenant-a", "tenant-b", "tenant-c")})
    keys = {t: store.add(t, label="bench-api")[1] for t in tenants}
    rng = random.Random(args.seed)
    asked = []
    for n in range(QUESTIONS):
        tenant = Tenant.read(wh, tenants[n % len(tenants)])
        asked.append((tenant.name, explain_question(rng, tenant, n % 6).text))
    bodies = ", ".join(lua_string(json.dumps({"query": q, "k": 5})) for _, q in asked)
    script = folder / "explain.lua"
    script.write_text(LUA % {"bodies": bodies, "keys": ", ".join(lua_string(keys[t]) for t, _ in asked)})
    env = {**os.environ, "COSTLAKE_API_RATE_LIMIT": "1000000", "COSTLAKE_LLM_PROVIDER": "offline"}
    env.pop("COSTLAKE_CONFIG", None)
    costlake = [sys.executable, "-m", "costlake", "-w", str(wh.root), "serve", "--workers", str(args.workers)]
    floor_dir = folder / "floor"
    floor_dir.mkdir(exist_ok=True)
    (floor_dir / "floor_app.py").write_text(FLOOR_APP)
    floor = [sys.executable, "-m", "uvicorn", "--app-dir", str(floor_dir), "floor_app:app",
             "--workers", str(args.workers), "--no-access-log", "--log-level", "warning",
             "--host", "127.0.0.1"]  # fmt: skip
    print(f"wrk -t1 -c{args.connections} -d{args.seconds}s, {args.workers} workers, {QUESTIONS} questions",
          flush=True)  # fmt: skip
    base = measure("floor", floor, env, script, args, folder)
    served = measure("costlake", costlake, env, script, args, folder)
    return {
        "machine": f"{os.cpu_count()} cores",
        "connections": args.connections,
        "seconds": args.seconds,
        "workers": args.workers,
        "floor": base,
        "costlake": served,
        "ratio_rps": round(base["requests_per_s"] / served["requests_per_s"], 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="build the lake here and keep it")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("error: wrk is not installed: `make bench-api` installs Debian's wrk as root", file=sys.stderr)
        return 2
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        report = run(args, args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="costlake-api-bench-") as tmp:
            report = run(args, Path(tmp))
    served = report["costlake"]
    print(f"costlake / floor: {report['ratio_rps']}x fewer requests per second than bare FastAPI")
    print("BENCH " + json.dumps(report))
    ok = (
        served["requests_per_s"] >= TARGET_RPS
        and served["p50_ms"] <= TARGET_P50_MS
        and served["non_2xx"] == 0
        and served["socket_errors"] == 0
    )
    if not ok:
        print(f"FAIL: targets are >= {TARGET_RPS:.0f} req/s, p50 <= {TARGET_P50_MS:.0f} ms, no errors")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
