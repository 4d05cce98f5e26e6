"""`costlake index` and `costlake explain` end to end: lake -> anomalies -> chunks -> index -> answer."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from costlake.catalog.views import UnknownTenant
from costlake.lake.warehouse import Warehouse
from costlake.pipeline.tenants import load_tenants
from costlake.rag.embedders import HashingEmbedder
from costlake.rag.embedders import base as embedders_base
from costlake.rag.explain import MAX_ANSWER_CHARS, Explainer, ExplainResult
from costlake.rag.index import VectorIndex
from costlake.rag.indexer import build_index, index_folder, lake_chunks, rag_folder
from costlake.rag.llm import LLMClient, OfflineClient, register
from costlake.rag.llm import base as llm_base
from costlake.rag.prompt import Prompt
from costlake.settings import Settings
from helpers import ingest_and_run

START = dt.date(2025, 1, 1)
A1, A2, B1 = "111111111111", "222222222222", "333333333333"
API_KEYS = {
    "explanation",
    "latency_ms",
    "retrieved_context_count",
    "citations",
    "retrieval_ms",
    "generation_ms",
    "provider",
    "degraded",
    "degraded_reason",
    "grounded",
    "intent",
    "date_from",
    "date_to",
}


def _bill(days: int = 45, spike: tuple[str, int] | None = (A1, 33)) -> list[list[str]]:
    rows = []
    for i in range(days):
        day = (START + dt.timedelta(days=i)).isoformat()
        for account, service, level in ((A1, "AmazonEC2", 300), (A2, "AmazonS3", 90), (B1, "AmazonRDS", 150)):
            cost = str(level + (i * 7) % 5)
            if spike is not None and (account, i) == spike:
                cost = str(level * 5)
            rows.append([f"{account}-{service}-{i}", day, account, service, cost, day])
    return rows


@pytest.fixture
def lake(
    make_wh: Callable[..., Warehouse], write_csv: Callable[..., Path], tmp_path: Path
) -> Iterator[Warehouse]:
    wh = make_wh(embedder="hashing")
    ingest_and_run(wh, write_csv("bill.csv", _bill()))
    tenants = write_csv(
        "tenants.csv",
        [[A1, "team-a", "payments-prod"], [A2, "team-a", "web-dev"], [B1, "team-b", "ml-prod"]],
        header=("account_id", "tenant_id", "account_name"),
    )
    load_tenants(wh, tenants)
    yield wh


def test_explain_answers_with_the_api_shape_and_cites_the_anomaly(lake: Warehouse) -> None:
    report = build_index(lake)
    assert (report.chunks, report.added, report.embedded) == (1, 1, 1)
    question = "why did EC2 spend jump for payments-prod on February 3?"
    answer = Explainer(lake).explain(question, tenant="team-a")
    body = answer.model_dump(mode="json")
    assert set(body) == API_KEYS
    assert (body["provider"], body["degraded"], body["grounded"]) == ("offline", False, True)
    assert body["degraded_reason"] is None
    [cited] = body["citations"]
    assert (cited["account_id"], cited["service_name"]) == (A1, "amazonec2")
    assert (cited["usage_date"], cited["impact_usd"]) == ("2025-02-03", "1197.5")
    assert cited["chunk_id"] in body["explanation"] and "$1,500.00" in body["explanation"]
    assert json.loads(json.dumps(body)) == body  # plain JSON types only


def test_a_tenant_never_retrieves_another_tenants_anomaly(lake: Warehouse) -> None:
    build_index(lake)
    result = Explainer(lake).explain(f"why did account {A1} jump on 2025-02-03?", tenant="team-b")
    answer = result.model_dump(mode="json")
    assert answer["citations"] == [] and answer["retrieved_context_count"] == 0
    assert A1 in answer["explanation"] and "payments-prod" not in answer["explanation"]


def test_moving_an_account_to_another_tenant_takes_effect_without_reindexing(
    lake: Warehouse, write_csv: Callable[..., Path]
) -> None:
    build_index(lake)
    question = "why did EC2 spend jump on 2025-02-03?"
    assert Explainer(lake).explain(question, tenant="team-a").retrieved_context_count == 1
    moved = write_csv(
        "moved.csv", [[A1, "team-b", "payments-prod"]], header=("account_id", "tenant_id", "account_name")
    )
    load_tenants(lake, moved)
    assert Explainer(lake).explain(question, tenant="team-a").citations == []
    assert Explainer(lake).explain(question, tenant="team-b").retrieved_context_count == 1


def test_an_account_renamed_since_the_index_is_asked_about_by_its_new_name(
    lake: Warehouse, write_csv: Callable[..., Path]
) -> None:
    build_index(lake)
    assert not Explainer(lake).stale
    renamed = write_csv(
        "renamed.csv", [[A1, "team-a", "payments-core"]], header=("account_id", "tenant_id", "account_name")
    )
    load_tenants(lake, renamed)
    explainer = Explainer(lake)
    assert explainer.stale  # the CLI warns: run `costlake index`
    told = subprocess.run(
        [sys.executable, "-m", "costlake", "--warehouse", lake.settings.warehouse, "explain", "why?"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "COSTLAKE_EMBEDDER": "hashing"},
    )  # fmt: skip
    assert told.returncode == 0, told.stderr  # one line, not wrapped at 80 columns into a pipe
    assert (
        "warning: anomalies or account names changed since the index was built; run `costlake index` to"
        in told.stderr
    )
    assert explainer.retriever.parse("why did payments-core jump?", "team-a").account_ids == {A1}
    assert explainer.retriever.parse("why did payments-prod jump?", "team-a").account_ids == frozenset()
    build_index(lake)
    assert not Explainer(lake).stale


def test_index_updates_incrementally_and_equals_a_rebuild(
    lake: Warehouse, write_csv: Callable[..., Path], tmp_path: Path
) -> None:
    first = build_index(lake)
    assert not Explainer(lake).stale
    again = build_index(lake)
    assert (again.added, again.changed, again.removed, again.unchanged, again.embedded) == (0, 0, 0, 1, 0)
    # A second spike appears (new chunk) and the first is corrected away (removed chunk).
    fix = [r for r in _bill(spike=(A2, 40)) if r[0] in (f"{A1}-AmazonEC2-33", f"{A2}-AmazonS3-40")]
    for row in fix:
        row[5] = (START + dt.timedelta(days=46)).isoformat()
    ingest_and_run(lake, write_csv("fix.csv", fix))
    assert Explainer(lake).stale  # the CLI warns: run `costlake index`
    update = build_index(lake)
    assert not Explainer(lake).stale
    assert (update.added, update.removed, update.embedded) == (1, 1, 1)
    incremental = VectorIndex.open(first.folder)
    fresh = lake.settings.model_copy(update={"rag_dir": str(tmp_path / "fresh-rag")})
    rebuilt = build_index(Warehouse(fresh))
    full = VectorIndex.open(rebuilt.folder)
    assert incremental.chunk_ids() == full.chunk_ids() == [c.chunk_id for c in lake_chunks(lake)]
    for chunk_id, vector in full.vectors().items():
        assert (incremental.vectors()[chunk_id] == vector).all()


class _Inventing(LLMClient):
    """A provider that makes up a number: what the grounding check is for."""

    name = "inventing"

    def _complete(self, prompt: Prompt) -> str:
        return "EC2 rose by $999.99 because of a runaway job."


@pytest.fixture
def inventing(lake: Warehouse, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Warehouse]:
    """The lake, indexed, with the "inventing" provider registered the way a plugin would be (and
    unregistered after the test); call it with settings to get a warehouse that uses the provider."""
    monkeypatch.setattr(llm_base, "_REGISTRY", dict(llm_base._REGISTRY))
    register("inventing", _Inventing)
    build_index(lake)

    def make(**settings: Any) -> Warehouse:
        return Warehouse(lake.settings.model_copy(update={"llm_provider": "inventing", **settings}))

    return make


def test_an_invented_number_is_replaced_by_the_offline_composition(
    inventing: Callable[..., Warehouse],
) -> None:
    answer = Explainer(inventing()).explain("why did EC2 jump on 2025-02-03?", tenant="team-a")
    assert (answer.degraded, answer.degraded_reason, answer.grounded) == (True, "ungrounded", True)
    assert answer.unsupported == ["999.99"] and "999.99" not in answer.explanation
    offline = Explainer(inventing(llm_provider="offline")).explain(
        "why did EC2 jump on 2025-02-03?", tenant="team-a"
    )
    assert answer.explanation == offline.explanation and answer.provider == "inventing"


def test_with_llm_ungrounded_flag_the_models_text_is_kept_and_flagged(
    inventing: Callable[..., Warehouse],
) -> None:
    answer = Explainer(inventing(llm_ungrounded="flag")).explain(
        "why did EC2 jump on 2025-02-03?", tenant="team-a"
    )
    assert answer.explanation == "EC2 rose by $999.99 because of a runaway job."
    assert (answer.degraded, answer.degraded_reason, answer.grounded) == (False, None, False)
    assert answer.unsupported == ["999.99"]


class _Rambling(LLMClient):
    """A provider whose server ignores max_tokens: a review got a 3 MB answer back as the explanation."""

    name = "rambling"

    def _complete(self, prompt: Prompt) -> str:
        return "EC2 rose. " * 1_000_000


def test_an_answer_longer_than_an_answer_may_be_is_a_failed_provider(
    lake: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(llm_base, "_REGISTRY", dict(llm_base._REGISTRY))
    register("rambling", _Rambling)
    build_index(lake)
    rambling = Warehouse(lake.settings.model_copy(update={"llm_provider": "rambling"}))
    answer = Explainer(rambling).explain("why did EC2 jump on 2025-02-03?", tenant="team-a")
    assert (answer.degraded, answer.degraded_reason) == (True, "provider_error")
    assert len(answer.explanation) < MAX_ANSWER_CHARS and "EC2 rose. EC2 rose." not in answer.explanation


def test_only_a_question_asked_before_is_answered_at_once(
    lake: Warehouse, write_csv: Callable[..., Path]
) -> None:
    """What the API answers on its event loop: a new question's vector costs the model 10-60 ms,
    which goes to a thread, so one tenant's new questions do not hold up everyone's requests."""
    corrected = [r for r in _bill(spike=(A2, 40)) if r[0] == f"{A2}-AmazonS3-40"]  # a second anomaly
    ingest_and_run(lake, write_csv("correction.csv", corrected))
    assert build_index(lake).chunks == 2  # more than one: the question's vector ranks them
    explainer = Explainer(lake)
    question = "why did spend jump?"
    assert not explainer.answers_at_once(question, "team-a")  # the index is not loaded yet
    explainer.explain(question, tenant="team-a")
    assert explainer.answers_at_once(question, "team-a")
    assert not explainer.answers_at_once(question, "team-b")  # another tenant's vectors are its own
    assert not explainer.answers_at_once("why did spend drop?", "team-a")


def test_an_unknown_tenant_is_an_input_error_not_an_empty_answer(lake: Warehouse) -> None:
    build_index(lake)
    with pytest.raises(UnknownTenant, match="unknown tenant 'tenant-nope'"):
        Explainer(lake).explain("why did EC2 jump?", tenant="tenant-nope")


def test_the_json_body_is_the_result_without_unsupported_numbers(lake: Warehouse) -> None:
    build_index(lake)
    answer = Explainer(lake).explain("why did EC2 spend jump on 2025-02-03?", tenant="team-a")
    body = answer.model_dump(mode="json")
    assert list(body) == list(ExplainResult.model_fields)[:-1] and "unsupported" not in body
    assert body["citations"] == [c.model_dump() for c in answer.citations]
    assert ExplainResult.model_validate({**body, "unsupported": answer.unsupported}) == answer


def test_one_llm_client_and_one_embedder_serve_every_question_of_a_process(
    lake: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    clients: list[LLMClient] = []
    embedders: list[HashingEmbedder] = []

    def counting_llm(**options: Any) -> LLMClient:
        clients.append(OfflineClient(**options))
        return clients[-1]

    def counting_embedder(**options: Any) -> HashingEmbedder:
        embedders.append(HashingEmbedder(**options))
        return embedders[-1]

    # Registered the way plugins would be, and unregistered after the test.
    monkeypatch.setattr(llm_base, "_REGISTRY", dict(llm_base._REGISTRY))
    monkeypatch.setattr(embedders_base, "_REGISTRY", dict(embedders_base._REGISTRY))
    register("counting", counting_llm)
    embedders_base.register("hashing", counting_embedder)
    build_index(lake)
    settings = lake.settings.model_copy(update={"llm_provider": "counting"})
    first = Explainer(Warehouse(settings))
    first.explain("why did EC2 jump on 2025-02-03?", tenant="team-a")
    first.explain("what happened to payments-prod in February?", tenant="team-a")
    second = Explainer(Warehouse(settings.model_copy()))
    assert second.explain("why did EC2 jump on 2025-02-03?", tenant="team-a").provider == "offline"
    assert len(clients) == 1 and first.llm is second.llm is clients[0]
    assert len(embedders) == 1  # built by `costlake index`, then reused by both explainers


def _cli(wh: Warehouse, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "costlake", "--warehouse", wh.settings.warehouse, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COSTLAKE_EMBEDDER": "hashing", **env},
    )


@pytest.mark.slow
def test_cli_index_explain_and_degraded_mode(lake: Warehouse) -> None:
    assert "explain" not in rag_folder(lake).name
    made = _cli(lake, "index")
    assert made.returncode == 0 and "1 chunks" in made.stdout, made.stderr
    assert index_folder(rag_folder(lake), "hashing:256").is_dir()
    text = _cli(lake, "explain", "why did EC2 spend jump on 2025-02-03?", "--tenant", "team-a")
    assert text.returncode == 0 and "Sources:" in text.stdout and "amazonec2" in text.stdout
    asked = ("explain", "what happened to EC2 on 2025-02-03?", "--tenant", "team-a", "--format", "json")
    degraded = _cli(lake, *asked, COSTLAKE_LLM_PROVIDER="failing", COSTLAKE_LLM_MAX_ATTEMPTS="2")
    body = json.loads(degraded.stdout)
    assert set(body) == API_KEYS and body["degraded"] is True and body["provider"] == "failing"
    assert body["degraded_reason"] == "provider_error"
    assert body["retrieved_context_count"] == 1 and body["citations"][0]["chunk_id"] in body["explanation"]
    failed = _cli(lake, *asked, COSTLAKE_LLM_PROVIDER="failing", COSTLAKE_LLM_FAILURE="error")
    assert failed.returncode == 3 and "injected transient failure" in failed.stderr
    unknown = _cli(lake, *asked, COSTLAKE_LLM_PROVIDER="nope")
    assert unknown.returncode == 1 and "unknown" in unknown.stderr and "offline" in unknown.stderr
    nobody = _cli(lake, "explain", "why did EC2 jump?", "--tenant", "tenant-nope")
    assert (nobody.returncode, nobody.stdout) == (1, "")
    assert nobody.stderr.strip() == "error: unknown tenant 'tenant-nope'"
    no_index = _cli(lake, "explain", "why?", COSTLAKE_RAG_DIR=str(Path(lake.settings.warehouse) / "none"))
    assert no_index.returncode == 1 and "run `costlake index` first" in no_index.stderr


@pytest.mark.slow
def test_the_offline_default_embedder_builds_the_index(lake: Warehouse) -> None:
    wh = Warehouse(lake.settings.model_copy(update={"embedder": "minilm"}))
    report = build_index(wh)
    assert report.embedder_id == "minilm:384" and report.embedded == 1
    question = "why did compute costs increase in February?"
    answer = Explainer(wh).explain(question, tenant="team-a").model_dump(mode="json")
    assert answer["retrieved_context_count"] == 1 and answer["grounded"] is True


def test_settings_keep_the_offline_defaults() -> None:
    s = Settings(warehouse="x")
    assert (s.embedder, s.llm_provider, s.llm_failure) == ("minilm", "offline", "degraded")
