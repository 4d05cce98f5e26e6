"""What changes under a running server: a revoked key, accounts moved to another tenant, a rebuilt
index; and the limits: the per-key rate, a failing provider, the request log."""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from api_server import serve, stop
from costlake.api.state import KEY_RECHECK_SECONDS
from costlake.lake.api_keys import KeyStore
from costlake.lake.warehouse import Warehouse
from costlake.pipeline.tenants import load_tenants
from costlake.rag.chunk_store import read_chunks, write_chunks
from costlake.rag.indexer import build_index
from two_tenants import A1, B1, build_lake

WHY = {"query": "why did EC2 spend jump?"}


def _until(check: Callable[[], bool], seconds: float) -> float:
    """Seconds until `check()` held (fails after `seconds`)."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < seconds, "not within the time allowed"
        time.sleep(0.1)
    return time.monotonic() - started


@pytest.fixture(scope="module")
def own_lake(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    wh = build_lake(tmp_path_factory.mktemp("lifecycle"))
    build_index(wh)
    return wh


@pytest.fixture
def server(own_lake: Warehouse) -> Iterator[Callable[..., str]]:
    started = []

    def start(**settings: object) -> str:
        found, thread, url = serve(own_lake.settings.model_copy(update={"api_rate_limit": 0.0, **settings}))
        started.append((found, thread))
        return url

    yield start
    for found, thread in started:
        stop(found, thread)


def _get(url: str, key: str, path: str = "/accounts") -> requests.Response:
    return requests.get(url + path, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def _explain(url: str, key: str) -> requests.Response:
    return requests.post(url + "/explain", json=WHY, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def test_a_revoked_key_is_refused_once_the_key_is_checked_again(
    own_lake: Warehouse, server: Callable[..., str]
) -> None:
    url = server()
    store = KeyStore.for_settings(own_lake.settings, own_lake.root)
    record, key = store.add("team-a")
    assert _get(url, key).status_code == 200
    KeyStore.for_settings(own_lake.settings, own_lake.root).revoke(record.key_id)  # another connection
    # Every KEY_RECHECK_SECONDS (2 s); the margin is for a loaded CI machine, not for the server.
    assert _until(lambda: _get(url, key).status_code == 401, 5.0) < KEY_RECHECK_SECONDS + 1.5


def test_moving_an_account_and_rebuilding_the_index_reach_a_running_server(
    own_lake: Warehouse, server: Callable[..., str], tmp_path: Path
) -> None:
    url = server()
    store = KeyStore.for_settings(own_lake.settings, own_lake.root)
    team_a, team_b = store.add("team-a")[1], store.add("team-b")[1]
    assert A1 in {c["account_id"] for c in _explain(url, team_a).json()["citations"]}
    moved = tmp_path / "moved.csv"
    moved.write_text(f"account_id,tenant_id\n{A1},team-b\n")
    load_tenants(own_lake, moved)
    try:

        def moved_over() -> bool:
            return {a["account_id"] for a in _get(url, team_b).json()["data"]} == {A1, B1}

        _until(moved_over, 10.0)
        assert A1 not in _get(url, team_a).text
        assert A1 not in _explain(url, team_a).text
        assert A1 in {c["account_id"] for c in _explain(url, team_b).json()["citations"]}
        before = requests.get(url + "/health", timeout=30).json()["index"]["built_at"]
        build_index(Warehouse(own_lake.settings))
        _until(lambda: not requests.get(url + "/health", timeout=30).json()["index"]["stale"], 10.0)
        assert requests.get(url + "/health", timeout=30).json()["index"]["built_at"] >= before
    finally:
        moved.write_text(f"account_id,tenant_id\n{A1},team-a\n")
        load_tenants(own_lake, moved)


def test_the_per_key_rate_limit_answers_429_with_retry_after(
    own_lake: Warehouse, server: Callable[..., str]
) -> None:
    url = server(api_rate_limit=1.0)  # a burst of 2, then one per second
    key = KeyStore.for_settings(own_lake.settings, own_lake.root).add("team-a")[1]
    other = KeyStore.for_settings(own_lake.settings, own_lake.root).add("team-a")[1]
    answers = [_get(url, key) for _ in range(4)]
    limited = [r for r in answers if r.status_code == 429]
    assert limited and all(int(r.headers["retry-after"]) >= 1 for r in limited)
    assert limited[0].headers["content-type"].startswith("application/problem+json")
    assert _get(url, other).status_code == 200  # each key has its own bucket


def test_a_failing_provider_degrades_or_is_a_502_by_setting(
    own_lake: Warehouse, server: Callable[..., str]
) -> None:
    key = KeyStore.for_settings(own_lake.settings, own_lake.root).add("team-a")[1]
    degraded = _explain(server(llm_provider="failing"), key)
    assert degraded.status_code == 200
    body = degraded.json()
    assert body["degraded"] and body["degraded_reason"] == "provider_error" and body["citations"]
    assert "injected" not in degraded.text  # what the provider said (its URL, credentials) stays in the log
    failed = _explain(server(llm_provider="failing", llm_failure="error"), key)
    assert failed.status_code == 502 and failed.json()["type"].endswith("/provider-error")
    assert "Traceback" not in failed.text and "injected" not in failed.text


def test_a_provider_missing_its_settings_is_a_503_naming_no_variable(
    own_lake: Warehouse, server: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    key = KeyStore.for_settings(own_lake.settings, own_lake.root).add("team-a")[1]
    for failure in ("degrade", "error"):
        answered = _explain(server(llm_provider="openai", llm_failure=failure), key)
        assert answered.status_code == 503, (failure, answered.text)
        assert answered.json()["type"].endswith("/unavailable")
        assert "OPENAI_API_KEY" not in answered.text and "Traceback" not in answered.text


def test_one_log_line_per_request_without_the_key(
    own_lake: Warehouse, server: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    url = server()
    key = KeyStore.for_settings(own_lake.settings, own_lake.root).add("team-a")[1]
    access = logging.getLogger("costlake.api.access")
    access.setLevel(logging.INFO)
    with caplog.at_level(logging.INFO, logger="costlake.api.access"):
        answer = requests.post(
            url + "/explain", json=WHY, headers={"Authorization": f"Bearer {key}", "X-Request-Id": "req-42"},
            timeout=30,
        )  # fmt: skip
        _until(lambda: any(getattr(r, "request_id", "") == "req-42" for r in caplog.records), 5.0)
    assert answer.headers["x-request-id"] == "req-42"
    [line] = [r for r in caplog.records if getattr(r, "request_id", "") == "req-42"]
    fields = vars(line)
    assert fields["tenant"] == "team-a" and fields["route"] == "/explain" and fields["status"] == 200
    assert fields["latency_ms"] > 0 and fields["retrieval_ms"] >= 0 and "generation_ms" in fields
    assert key not in str(fields) and key[:20] not in caplog.text


def test_metrics_can_require_their_own_token(server: Callable[..., str]) -> None:
    url = server(api_metrics_token="scrape-token-123")
    assert requests.get(url + "/metrics", timeout=30).status_code == 401
    wrong = {"Authorization": "Bearer scrape-token-999"}
    assert requests.get(url + "/metrics", headers=wrong, timeout=30).status_code == 401
    right = {"Authorization": "Bearer scrape-token-123"}
    assert "costlake_http_requests_total" in requests.get(url + "/metrics", headers=right, timeout=30).text
    assert requests.get(url + "/health", timeout=30).status_code == 200  # health stays public


def test_answering_from_anomalies_reads_no_file_of_the_lake(
    own_lake: Warehouse, server: Callable[..., str]
) -> None:
    url = server()
    key = KeyStore.for_settings(own_lake.settings, own_lake.root).add("team-a")[1]
    assert _explain(url, key).status_code == 200  # the view is built: index, owners, anchor
    tables = [p for p in (own_lake.root / "costlake").iterdir() if (p / "data").is_dir()]
    for table in tables:  # every data file of the lake out of reach
        (table / "data").rename(table / "data.away")
    try:
        answer = _explain(url, key)
        assert answer.status_code == 200 and answer.json()["citations"]
        with requests.Session() as session:  # a look-up does read the lake: a 500, a usable connection
            session.headers["Authorization"] = f"Bearer {key}"
            failed = session.get(url + "/anomalies", headers={"X-Request-Id": "req-500"}, timeout=30)
            assert failed.status_code == 500 and failed.headers["x-request-id"] == "req-500"
            assert failed.json()["type"].endswith("/internal") and "Traceback" not in failed.text
            assert session.get(url + "/health", timeout=30).status_code == 200  # same connection
    finally:
        for table in tables:
            (table / "data.away").rename(table / "data")


def test_without_an_index_questions_needing_it_are_503_without_paths(
    own_lake: Warehouse, server: Callable[..., str]
) -> None:
    url = server()
    key = KeyStore.for_settings(own_lake.settings, own_lake.root).add("team-a")[1]
    rag = own_lake.root / "rag"
    rag.rename(own_lake.root / "rag.away")
    try:
        answer = _explain(url, key)
        assert answer.status_code == 503 and answer.headers["retry-after"]
        assert answer.json()["detail"] == "the explanation index is not built yet"
        assert str(own_lake.root) not in answer.text and "costlake index" not in answer.text
        lookup = {"query": "how much did we spend in January 2025?"}  # from the tables: no index needed
        headers = {"Authorization": f"Bearer {key}"}
        assert requests.post(url + "/explain", json=lookup, headers=headers, timeout=30).status_code == 200
        assert requests.get(url + "/health", timeout=30).json()["index"]["reachable"] is False
    finally:
        (own_lake.root / "rag.away").rename(rag)
    assert _until(lambda: _explain(url, key).status_code == 200, 10.0) < 10.0


def _damage(rag: Path, how: str) -> dict[Path, bytes]:
    """The index's files as `how` damages them (path: its new bytes)."""
    chunks = rag / "chunks.jsonl"
    lines = chunks.read_bytes().splitlines(keepends=True)
    meta = next(rag.glob("index/*/index.json"))
    vectors = next(rag.glob("index/*/vectors-*"))
    return {
        "chunks cut inside a line": {chunks: chunks.read_bytes()[: chunks.stat().st_size // 2]},
        "chunks cut at a line's end": {chunks: b"".join(lines[:-1])},
        "chunks emptied": {chunks: b""},
        "vectors cut": {vectors: vectors.read_bytes()[: vectors.stat().st_size // 2]},
        "another embedder's": {meta: meta.read_bytes().replace(b'"embedder_id": "', b'"embedder_id": "x')},
    }[how]


@pytest.mark.parametrize(
    "how",
    [
        "chunks cut inside a line",
        "chunks cut at a line's end",
        "chunks emptied",
        "vectors cut",
        "another embedder's",
    ],
)
def test_a_damaged_index_fails_only_the_questions_needing_it(
    own_lake: Warehouse, server: Callable[..., str], how: str
) -> None:
    """A chunks or vectors file cut short: every route answered 400 with the file's path (or 500)
    and /health called the lake unreachable. A chunks file emptied or cut at a line's end was read as
    fewer anomalies ("No anomaly matched"), an index of another embedder was 503 while /health
    called it fine. Now only the questions that need the index are 503, and /health says so."""
    url = server()
    key = KeyStore.for_settings(own_lake.settings, own_lake.root).add("team-a")[1]
    rag = own_lake.root / "rag"
    assert len((rag / "chunks.jsonl").read_bytes().splitlines()) >= 2
    damaged = _damage(rag, how)
    kept = {path: path.read_bytes() for path in damaged}
    try:
        for path, data in damaged.items():
            path.write_bytes(data)
        _touch(rag, 1)
        answer = _explain(url, key)
        assert answer.status_code == 503 and answer.headers["retry-after"]
        assert answer.json()["detail"] == "the explanation index cannot be read; it has to be built again"
        assert str(own_lake.root) not in answer.text
        lookup = {"query": "how much did we spend in January 2025?"}  # from the tables: no index needed
        headers = {"Authorization": f"Bearer {key}"}
        assert requests.post(url + "/explain", json=lookup, headers=headers, timeout=30).status_code == 200
        for path in ("/accounts", "/anomalies", "/costs/daily"):
            assert _get(url, key, path).status_code == 200
        health = requests.get(url + "/health", timeout=30)
        assert health.status_code == 200 and health.json()["index"]["reachable"] is False
    finally:
        for path, data in kept.items():
            path.write_bytes(data)
        _touch(rag, 2)  # as `costlake index` would leave it
    assert _until(lambda: _explain(url, key).status_code == 200, 10.0) < 10.0


def test_chunks_newer_than_their_vectors_are_served_while_costlake_index_runs(
    own_lake: Warehouse, server: Callable[..., str]
) -> None:
    """`costlake index` writes the chunks, then the vectors: a server that read the chunks in between
    called the index damaged (503 for the whole embedding step, and for good if the index was
    stopped there). Chunks the index wrote whole are served by their words until the vectors follow."""
    url = server()
    key = KeyStore.for_settings(own_lake.settings, own_lake.root).add("team-a")[1]
    rag = own_lake.root / "rag"
    kept = (rag / "chunks.jsonl").read_bytes(), (rag / "chunks.jsonl.digest").read_bytes()
    try:
        write_chunks(read_chunks(rag / "chunks.jsonl")[:-1], rag / "chunks.jsonl")  # as a new index would
        _touch(rag, 1)
        assert _explain(url, key).status_code == 200
        assert requests.get(url + "/health", timeout=30).json()["index"]["reachable"] is True
    finally:
        (rag / "chunks.jsonl").write_bytes(kept[0])
        (rag / "chunks.jsonl.digest").write_bytes(kept[1])
        _touch(rag, 2)


def test_a_damaged_source_file_makes_the_index_stale_not_the_health_check_fail(
    own_lake: Warehouse, server: Callable[..., str]
) -> None:
    """source.json cut short, or nested too deep for JSON's parser: GET /health was a 500 with a
    traceback."""
    url = server()
    source = own_lake.root / "rag" / "source.json"
    kept = source.read_bytes()
    try:
        for damaged in (kept[:10], b"[" * 200_000 + b"]" * 200_000):
            source.write_bytes(damaged)
            _touch(own_lake.root / "rag", 1)
            health = requests.get(url + "/health", timeout=30)
            assert health.status_code == 200 and health.json()["index"]["stale"] is True
    finally:
        source.write_bytes(kept)
        _touch(own_lake.root / "rag", 2)


def _touch(rag: Path, seconds: int) -> None:
    """The files the server watches for a new index, `seconds` ahead: a new version whatever the clock."""
    for path in [rag / "chunks.jsonl", *rag.glob("index/*/index.json")]:
        os.utime(path, ns=(time.time_ns(), time.time_ns() + seconds * 10**9))


def test_a_catalog_locked_by_another_process_is_a_quick_503(
    own_lake: Warehouse, server: Callable[..., str]
) -> None:
    url = server()
    key = KeyStore.for_settings(own_lake.settings, own_lake.root).add("team-a")[1]
    assert _get(url, key).status_code == 200
    holder = sqlite3.connect(own_lake.root / "catalog.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # as a long commit would
    try:
        started = time.monotonic()
        busy = _get(url, key)
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
        assert busy.json()["type"].endswith("/busy") and time.monotonic() - started < 3.0
        assert requests.get(url + "/metrics", timeout=30).status_code == 200
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert _get(url, key).status_code == 200
