"""Billing text is untrusted input (issue 12, point 2), through the real pipeline.

Every string of `injection_corpus.py` is placed in every text field of a native file (service_name,
region, pricing_model), of a FOCUS file (ServiceName, RegionId, RegionName, SubAccountName,
BillingAccountName, PricingCategory, CommitmentDiscountType, ChargeDescription, Tags) and of the tenants
file (account_name), on series with a spike, so that anomalies exist on those names. The lake is built by
ingest -> `ops.publish_and_detect` -> `costlake index`, then every anomaly is asked about. Checked:

- no 12-character piece of any corpus string reaches a prompt (recorded by an OpenAI-compatible server on
  127.0.0.1 that the test starts), an offline answer, a citation, or the CLI's output;
- the money of those rows counts, and `costlake query` still shows the stored names;
- the server always answers with a manipulated claim (a $0 total, a figure not in the context, a citation
  of an anomaly that was not retrieved, a figure taken from digits inside a name): no such answer comes
  back `grounded: true`; by default it is replaced by the offline composition (`degraded_reason:
  "ungrounded"`), with `llm_ungrounded = "flag"` the model's text comes back with `grounded: false`.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from injection_corpus import CORPUS, TEXTS
from llm_stub import Reply, StubServer, chat_completion, stub_server

from costlake.lake.warehouse import Warehouse
from costlake.pipeline.tenants import load_tenants
from costlake.rag.explain import Explainer, ExplainResult
from costlake.rag.grounding import context_facts
from costlake.rag.indexer import build_index, lake_chunks
from costlake.rag.prompt import SYSTEM, parse_context
from costlake.settings import Settings
from helpers import NATIVE_HEADER, ingest_and_run, query_rows

START, DAYS, SPIKE = dt.date(2025, 1, 1), 45, 36
SPIKE_DAY = START + dt.timedelta(days=SPIKE)
N = len(TEXTS)
NATIVE = [str(200_000_000_000 + k) for k in range(N)]
FOCUS = [str(300_000_000_000 + k) for k in range(N)]
CONTROL, CONTROL_NAME = "400000000001", "web 8461"  # a real name with digits in it
WINDOW = 12
FOCUS_HEADER = (
    "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency", "BillingPeriodStart",
    "BillingPeriodEnd", "ChargeCategory", "ChargePeriodStart", "ChargePeriodEnd", "ServiceName",
    "SubAccountId", "SubAccountName", "RegionId", "RegionName", "PricingCategory", "CommitmentDiscountType",
    "Tags", "ChargeDescription",
)  # fmt: skip


def test_the_corpus_has_at_least_30_strings_in_every_category_the_issue_names() -> None:
    assert len(set(TEXTS)) == len(TEXTS) >= 30
    categories = {category for category, _ in CORPUS}
    assert {"role play", "break-out", "fake turn", "unicode", "numbers", "markup", "long"} <= categories
    assert {"French", "German", "Spanish", "Chinese", "Russian"} <= categories


# --- the lake ----------------------------------------------------------------------------------------------


def _cost(i: int, base: int, spike: int, step: int) -> str:
    return str(spike) if i == SPIKE else str(base + (i * step) % 4)


def _native_rows() -> list[list[str]]:
    header = (*NATIVE_HEADER, "region", "pricing_model")
    rows = [header]
    accounts = [(a, TEXTS[k], k) for k, a in enumerate(NATIVE)] + [(CONTROL, "AmazonEC2", 0)]
    for account, service, k in accounts:
        odd = (
            (TEXTS[(k + 1) % N], TEXTS[(k + 2) % N])
            if account != CONTROL
            else ("eu-central-1", "Savings Plan")
        )
        for i in range(DAYS):
            day = (START + dt.timedelta(days=i)).isoformat()
            rows.append(
                [
                    f"{account}-{i}-a",
                    day,
                    account,
                    service,
                    _cost(i, 100, 101, 7),
                    day,
                    "us-east-1",
                    "on_demand",
                ]
            )
            rows.append([f"{account}-{i}-b", day, account, service, _cost(i, 10, 900, 3), day, *odd])
    return rows


def _focus_rows() -> list[dict[str, str]]:
    rows = []
    for k, account in enumerate(FOCUS):
        text = {name: TEXTS[(k + shift) % N] for shift, name in enumerate(FOCUS_HEADER)}
        for i in range(DAYS):
            day = START + dt.timedelta(days=i)
            period = day.replace(day=1)
            for cost, region, pricing in (
                (_cost(i, 50, 51, 5), "eu-central-1", "Standard"),
                (_cost(i, 5, 700, 3), text["RegionId"], text["PricingCategory"]),
            ):
                rows.append(
                    {
                        **text,
                        "BilledCost": cost,
                        "BillingAccountId": "999999999999",
                        "BillingCurrency": "USD",
                        "BillingPeriodStart": f"{period}T00:00:00Z",
                        "BillingPeriodEnd": f"{(period + dt.timedelta(days=32)).replace(day=1)}T00:00:00Z",
                        "ChargeCategory": "Usage",
                        "ChargePeriodStart": f"{day}T00:00:00Z",
                        "ChargePeriodEnd": f"{day + dt.timedelta(days=1)}T00:00:00Z",
                        "SubAccountId": account,
                        "RegionId": region,
                        "PricingCategory": pricing,
                        "Tags": json.dumps({"team": text["Tags"]}),
                    }
                )
    return rows


def _write(path: Path, rows: list[Any], header: tuple[str, ...] | None = None) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        if header is None:
            csv.writer(handle, lineterminator="\n").writerows(rows)
        else:
            writer = csv.DictWriter(handle, header, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    """One warehouse with every corpus string in every name, published, detected and indexed."""
    folder = tmp_path_factory.mktemp("injection")
    native = _write(folder / "native.csv", _native_rows())
    focus = _write(folder / "focus.csv", _focus_rows(), FOCUS_HEADER)
    owners = [("account_id", "tenant_id", "account_name"), (CONTROL, "t-native", CONTROL_NAME)]
    owners += [(a, "t-native", TEXTS[(k + 3) % N]) for k, a in enumerate(NATIVE)]
    owners += [(a, "t-focus", TEXTS[(k + 7) % N]) for k, a in enumerate(FOCUS)]
    wh = Warehouse(Settings(warehouse=str(folder / "wh"), embedder="hashing"))
    results, _ = ingest_and_run(wh, native, focus)
    assert [(r.accepted, r.quarantined) for r in results] == [(2 * DAYS * (N + 1), 0), (2 * DAYS * N, 0)]
    load_tenants(wh, _write(folder / "tenants.csv", owners))
    build_index(wh)
    return wh


def _with(lake: Warehouse, **settings: Any) -> Explainer:
    return Explainer(Warehouse(lake.settings.model_copy(update=settings)))


def _questions() -> list[tuple[str, str]]:
    """(question, tenant): one per account, so that every anomaly is retrieved at least once."""
    asked = [(f"what happened to account {a} on {SPIKE_DAY}?", "t-native") for a in (*NATIVE, CONTROL)]
    asked += [(f"why did account {a} cost jump?", "t-focus") for a in FOCUS]
    return asked


# --- leak detection ----------------------------------------------------------------------------------------

_PIECES = {
    text.casefold()[i : i + WINDOW]: text for text in TEXTS for i in range(max(1, len(text) - WINDOW + 1))
}


def leaks(shown: str) -> set[str]:
    """The corpus strings of which some 12-character piece (case-folded) is in `shown`."""
    folded = shown.casefold()
    return {_PIECES[folded[i : i + WINDOW]] for i in range(len(folded)) if folded[i : i + WINDOW] in _PIECES}


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for inner in value.values():
            yield from _strings(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _strings(inner)


def _prompt_texts(request: dict[str, Any]) -> list[str]:
    """What a model was sent, as text: the context and question messages, and every string value of the
    context's JSON (decoded, so an escaped quote or \\n is compared as the character it stands for)."""
    system, context, question = request["json"]["messages"]
    assert system == {"role": "system", "content": SYSTEM}
    return [context["content"], question["content"], *_strings(parse_context(context["content"]))]


def _answer_text(result: ExplainResult) -> str:
    return result.explanation + json.dumps(result.model_dump(mode="json")["citations"], ensure_ascii=False)


# --- the manipulating server -------------------------------------------------------------------------------

FOREIGN_ID = "anom-000000000000"


def _claim(kind: str, chunks: list[dict[str, Any]]) -> str:
    """The manipulated answer of `kind` to a request whose context holds `chunks`."""
    facts = context_facts(chunks)
    first = chunks[0]["chunk_id"]
    if kind == "zero_total":
        assert Decimal(0) not in facts.numbers  # else "$0" would be a context value
        return f"The bill is $0 this month [{first}]."
    if kind == "invented_figure":
        return f"Spend rose by $123,456.78 because of a runaway job [{first}]."
    if kind == "foreign_citation":
        return f"Spend jumped on {SPIKE_DAY} [{FOREIGN_ID}]."
    runs = [run for chunk in chunks for name in _names(chunk) for run in re.findall(r"\d{2,}", name)]
    figure = next(run for run in runs if facts.unsupported(f"${run}"))
    return f"The bill came to ${figure} [{first}]."


def _names(chunk: dict[str, Any]) -> list[str]:
    """Name fields first (account name, service, contributors), the account id last."""
    values = [chunk.get("account_name"), chunk.get("service_name"), chunk.get("top_value")]
    values += [c.get("value") for c in chunk.get("contributors") or []]
    return [str(v) for v in values if v] + [str(chunk["account_id"])]


CLAIMS = ("zero_total", "invented_figure", "foreign_citation", "name_digits")


@pytest.fixture
def manipulating() -> Iterator[Callable[[str], StubServer]]:
    """start(kind) -> a local OpenAI-compatible server that always answers with a claim of `kind`."""
    servers: list[Any] = []

    def start(kind: str) -> StubServer:
        def respond(request: dict[str, Any]) -> Reply:
            chunks = parse_context(request["json"]["messages"][1]["content"])
            return Reply(body=chat_completion(_claim(kind, chunks) if chunks else "The bill is $0."))

        manager = stub_server(respond=respond)
        servers.append(manager)
        return manager.__enter__()

    yield start
    for manager in servers:
        manager.__exit__(None, None, None)


def _model(lake: Warehouse, server: StubServer, **settings: Any) -> Explainer:
    options = {"llm_provider": "openai", "llm_base_url": f"{server.url}/v1", "llm_model": "stub"}
    return _with(lake, **options, llm_max_attempts=1, llm_timeout_seconds=10, **settings)


# --- the tests ---------------------------------------------------------------------------------------------


def test_the_rows_money_counts_and_query_shows_the_stored_names(lake: Warehouse) -> None:
    [total] = query_rows(lake, "SELECT sum(total_cost_usd) AS usd FROM daily_account_cost")
    native = sum(Decimal(row[4]) for row in _native_rows()[1:])
    focus = sum(Decimal(row["BilledCost"]) for row in _focus_rows())
    assert total["usd"] == native + focus
    services = query_rows(lake, "SELECT DISTINCT service_name FROM account_service_day_cost")
    regions = query_rows(lake, "SELECT region FROM dim_region")
    assert TEXTS[0].lower() in {r["service_name"] for r in services}
    assert TEXTS[1] in {r["region"] for r in regions}
    anomalies = query_rows(
        lake, f"SELECT DISTINCT account_id FROM cost_anomalies WHERE usage_date = '{SPIKE_DAY}'"
    )
    assert {r["account_id"] for r in anomalies} == {*NATIVE, *FOCUS, CONTROL}


def test_no_injection_reaches_a_chunk_a_prompt_or_an_answer(
    lake: Warehouse, manipulating: Callable[[str], StubServer]
) -> None:
    chunks = lake_chunks(lake)
    assert not leaks("\n".join(c.text + json.dumps(c.metadata, ensure_ascii=False) for c in chunks))
    server = manipulating("zero_total")
    model, offline = _model(lake, server), _with(lake)
    for question, tenant in _questions():
        answered, composed = (e.explain(question, tenant=tenant) for e in (model, offline))
        assert answered.retrieved_context_count >= 1
        assert not leaks(_answer_text(answered)) and not leaks(_answer_text(composed))
        assert answered.explanation == composed.explanation  # the $0 claim was replaced
    assert len(server.requests) == len(_questions())
    seen = set()
    for request in server.requests:
        assert not set().union(*(leaks(text) for text in _prompt_texts(request)))
        seen |= {c["chunk_id"] for c in parse_context(request["json"]["messages"][1]["content"])}
    assert seen == {c.chunk_id for c in chunks}  # every anomaly on an injected name was in some prompt
    assert "(name withheld)" in server.requests[0]["json"]["messages"][1]["content"]


@pytest.mark.parametrize("kind", CLAIMS)
def test_a_manipulated_answer_is_replaced_by_the_offline_composition(
    lake: Warehouse, manipulating: Callable[[str], StubServer], kind: str
) -> None:
    model, offline = _model(lake, manipulating(kind)), _with(lake)
    for question, tenant in [*_questions()[:3], _questions()[N]]:  # the last is the control account
        answer = model.explain(question, tenant=tenant)
        assert (answer.degraded, answer.degraded_reason, answer.grounded) == (True, "ungrounded", True)
        assert (
            answer.unsupported and answer.explanation == offline.explain(question, tenant=tenant).explanation
        )
        if kind == "foreign_citation":
            assert answer.unsupported == [FOREIGN_ID]


@pytest.mark.parametrize("kind", CLAIMS)
def test_with_flag_a_manipulated_answer_comes_back_not_grounded(
    lake: Warehouse, manipulating: Callable[[str], StubServer], kind: str
) -> None:
    server = manipulating(kind)
    model = _model(lake, server, llm_ungrounded="flag")
    for number, (question, tenant) in enumerate([*_questions()[:3], _questions()[N]], start=1):
        answer = model.explain(question, tenant=tenant)
        body = answer.model_dump(mode="json")
        assert (body["degraded"], body["degraded_reason"], body["grounded"]) == (False, None, False)
        request = server.requests[number - 1]
        claim = _claim(kind, parse_context(request["json"]["messages"][1]["content"]))
        assert answer.explanation == claim and answer.unsupported


def test_the_name_digit_claim_uses_digits_of_a_real_name(lake: Warehouse) -> None:
    [chunk] = [c for c in lake_chunks(lake) if c.account_id == CONTROL]
    context = {**chunk.metadata, "chunk_id": chunk.chunk_id}
    assert chunk.account_name == CONTROL_NAME and _claim("name_digits", [context]).startswith(
        "The bill came to $8461"
    )


def _cli(lake: Warehouse, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "costlake", "--warehouse", lake.settings.warehouse, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COSTLAKE_EMBEDDER": "hashing"},
    )


@pytest.mark.slow
def test_the_cli_shows_labels_never_the_injected_names(lake: Warehouse) -> None:
    question = f"what happened to account {NATIVE[0]} on {SPIKE_DAY}?"
    explained = _cli(lake, "explain", question, "--tenant", "t-native")
    assert explained.returncode == 0, explained.stderr
    assert "(name withheld)" in explained.stdout and not leaks(explained.stdout + explained.stderr)
    for fmt in ("table", "csv", "json"):
        listed = _cli(lake, "anomalies", "--limit", "100", "--format", fmt)
        assert listed.returncode == 0, listed.stderr
        # (a table may wrap a label inside its cell; csv and json hold it whole)
        assert "withheld" in listed.stdout and not leaks(listed.stdout + listed.stderr)
        assert "amazonec2" in listed.stdout and "eu-central-1" in listed.stdout
    stored = _cli(lake, "query", "SELECT service_name FROM cost_anomalies", "--format", "json")
    assert TEXTS[0].lower() in {row["service_name"] for row in json.loads(stored.stdout)}
