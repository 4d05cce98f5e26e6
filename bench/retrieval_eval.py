"""Retrieval quality of the explanation layer: recall@5 and MRR per ranker, with and without filters.

    make bench-rag            # or: .venv/bin/python bench/retrieval_eval.py --chunks 500 5000

Generates anomalies in the `cost_anomalies` shape for 3 tenants (4 accounts each, 12 services, six
months), turns them into chunks exactly as `costlake index` does, embeds them with the configured
embedder (default: the offline MiniLM) into a FAISS index, and asks generated questions of five
kinds about randomly picked anomalies:

- exact:        the account id, the service's name, the date and the direction
- paraphrased:  the account's name, a paraphrase of the service ("virtual machines", "object store"),
                the date in words, a synonym of the direction
- no service:   account name and date only (relevant: every anomaly of that account that day)
- month only:   account name, service, month and direction (relevant: all of them that month)
- wrong tenant: a question about another tenant's account (relevant: nothing; any hit is a leak)

Each question is asked as the owning tenant (the wrong-tenant ones as another tenant) through
`Retriever` in three modes (dense, BM25, hybrid) with and without the filters parsed from the
question. recall@5 = share of the relevant anomalies in the top 5 (of at most 5); MRR = 1 / rank of
the first relevant one. Explain latency is the full offline path (retrieve, prompt, compose, check)
per question. Prints one table per corpus size and one `BENCH {json}` line.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa

from costlake.rag.chunks import Chunk, build_chunks
from costlake.rag.embedders import embedder_for
from costlake.rag.embedders.cache import CachedEmbedder
from costlake.rag.explain import context_of
from costlake.rag.grounding import check_grounding
from costlake.rag.index import VectorIndex
from costlake.rag.indexer import index_items
from costlake.rag.llm import llm_for
from costlake.rag.prompt import build_prompt
from costlake.rag.retriever import Retriever
from costlake.tables import COST_ANOMALIES, DIM_ACCOUNT

SERVICES = {  # lake name -> (how a bill names it, paraphrases a person would use)
    "amazonec2": ("EC2", ("virtual machines", "compute instances")),
    "amazons3": ("S3", ("object store", "storage buckets")),
    "amazonrds": ("RDS", ("managed Postgres", "relational database")),
    "awslambda": ("Lambda", ("serverless functions",)),
    "awsdatatransfer": ("data transfer", ("network egress", "bandwidth")),
    "amazoncloudfront": ("CloudFront", ("the CDN",)),
    "amazondynamodb": ("DynamoDB", ("the key-value store",)),
    "amazoneks": ("EKS", ("Kubernetes clusters",)),
    "amazonredshift": ("Redshift", ("the data warehouse",)),
    "amazonelasticache": ("ElastiCache", ("Redis caches",)),
    "amazoncloudwatch": ("CloudWatch", ("logging and monitoring",)),
    "amazonsagemaker": ("SageMaker", ("machine learning training",)),
}
KINDS_UP = ("spike", "step_up", "new_service")
KINDS_DOWN = ("dip", "step_down", "dropped_to_zero")
UP_WORDS, DOWN_WORDS = ("jump", "go up", "spike", "increase", "rise"), ("drop", "fall", "go down", "decrease")
PARAPHRASE_UP, PARAPHRASE_DOWN = ("surge", "climb", "grow so much"), ("shrink", "decline", "get cheaper")
TEAMS = ("payments", "search", "checkout", "identity", "analytics", "platform", "mobile", "billing")
ENVS = ("prod", "staging", "dev")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")  # fmt: skip
START, DAYS = date(2025, 1, 1), 181
QUESTION_KINDS = ("exact", "paraphrased", "no service", "month only", "wrong tenant")


def make_lake(n: int, rng: random.Random) -> tuple[pa.Table, pa.Table]:
    """`n` anomalies (cost_anomalies columns) and dim_account for 3 tenants x 4 accounts."""
    accounts = []
    names = rng.sample([f"{t}-{e}" for t in TEAMS for e in ENVS], 12)
    for i in range(12):
        account_id = str(rng.randrange(10**11, 10**12))
        accounts.append(
            {"account_id": account_id, "account_name": names[i], "tenant_id": f"tenant-{'abc'[i // 4]}"}
        )
    rows, seen = [], set()
    while len(rows) < n:
        acct, service = rng.choice(accounts)["account_id"], rng.choice(list(SERVICES))
        day = START + timedelta(days=rng.randrange(DAYS))
        if (acct, service, day) in seen:
            continue
        seen.add((acct, service, day))
        up = rng.random() < 0.6
        kind = rng.choice(KINDS_UP if up else KINDS_DOWN)
        expected = Decimal(rng.randrange(2_000, 500_000)) / 100
        actual = expected * Decimal(rng.choice(["2.5", "3.1", "1.9"] if up else ["0.3", "0.45"]))
        if kind == "new_service":
            expected, actual = Decimal(0), Decimal(rng.randrange(5_000, 90_000)) / 100
        if kind == "dropped_to_zero":
            actual = Decimal(0)
        impact = actual - expected
        region = rng.choice(["us-east-1", "eu-west-1", "us-west-2", "ap-southeast-1"])
        contributors = [
            {
                "dimension": "region",
                "value": region,
                "actual_usd": str(actual),
                "expected_usd": str(expected),
                "contribution_usd": str(impact),
            }
        ]
        pct = None if expected == 0 else (impact * 100 / expected).quantize(Decimal("0.0001"))
        one_day = kind in ("spike", "dip")
        rows.append(
            {
                "account_id": acct,
                "service_name": service,
                "usage_date": day,
                "method": "baseline",
                "kind": kind,
                "direction": "up" if up else "down",
                "actual_usd": actual,
                "expected_usd": expected,
                "expected_low_usd": expected * Decimal("0.6"),
                "expected_high_usd": expected * Decimal("1.4"),
                "impact_usd": impact,
                "impact_pct": pct,
                "score": Decimal("5.5"),
                "duration_days": 1 if one_day else rng.randrange(3, 30),
                "ongoing": not one_day,
                "history_days": 28,
                "top_dimension": "region",
                "top_value": region,
                "top_contribution_usd": impact,
                "contributors": json.dumps(contributors),
            }
        )
    return pa.Table.from_pylist(rows, schema=COST_ANOMALIES.arrow_schema()), pa.Table.from_pylist(
        accounts,
        schema=pa.schema(
            [DIM_ACCOUNT.arrow_schema().field(c) for c in ("account_id", "account_name", "tenant_id")]
        ),
    )


def questions(chunks: Sequence[Chunk], per_kind: int, rng: random.Random) -> list[dict[str, Any]]:
    """Questions with their asking tenant and relevant chunk ids."""
    by_key: dict[tuple[str, date], list[Chunk]] = {}
    for c in chunks:
        by_key.setdefault((c.account_id, c.usage_date), []).append(c)
    tenants = sorted({c.tenant_id for c in chunks})
    out = []
    for kind in QUESTION_KINDS:
        for target in rng.sample(list(chunks), per_kind):
            bill_name, paraphrases = SERVICES[target.service_name]
            day, up = target.usage_date, target.direction == "up"
            when = f"{MONTHS[day.month - 1]} {day.day}"
            tenant, relevant = target.tenant_id, {target.chunk_id}
            if kind == "exact":
                verb = rng.choice(UP_WORDS if up else DOWN_WORDS)
                text = f"Why did {bill_name} {verb} for account {target.account_id} on {day}?"
            elif kind == "paraphrased":
                verb = rng.choice(PARAPHRASE_UP if up else PARAPHRASE_DOWN)
                text = f"What made {rng.choice(paraphrases)} in {target.account_name} {verb} on {when}?"
            elif kind == "no service":
                text = f"What changed in {target.account_name} on {when}?"
                relevant = {c.chunk_id for c in by_key[(target.account_id, day)]}
            elif kind == "month only":
                month = f"{MONTHS[day.month - 1]} {day.year}"
                text = (
                    f"Why did {bill_name} {'go up' if up else 'go down'} in {target.account_name} in {month}?"
                )
                same = (target.account_id, target.service_name, target.direction, day.year, day.month)
                relevant = {
                    c.chunk_id
                    for c in chunks
                    if (c.account_id, c.service_name, c.direction, c.usage_date.year, c.usage_date.month)
                    == same
                }
            else:
                tenant = rng.choice([t for t in tenants if t != target.tenant_id])
                text = f"Why did {bill_name} {rng.choice(UP_WORDS)} for account {target.account_id} on {day}?"
                relevant = set()
            out.append({"kind": kind, "text": text, "tenant": tenant, "relevant": relevant})
    return out


def score(retrieved: list[Chunk], relevant: set[str], tenant: str) -> tuple[float, float]:
    """(recall@5, reciprocal rank); for a wrong-tenant question: (1, 1) when nothing leaked, else (0, 0)."""
    ids = [c.chunk_id for c in retrieved[:5]]
    if not relevant:
        clean = all(c.tenant_id == tenant for c in retrieved)
        return (1.0, 1.0) if clean else (0.0, 0.0)
    hits = len(relevant & set(ids)) / min(len(relevant), 5)
    rank = next((i for i, chunk_id in enumerate(ids, 1) if chunk_id in relevant), None)
    return hits, (1 / rank if rank else 0.0)


def run(n: int, per_kind: int, seed: int, embedder_name: str, cache: Path) -> dict[str, Any]:
    rng = random.Random(seed)
    anomalies, accounts = make_lake(n, rng)
    chunks = build_chunks(anomalies, accounts)
    embedder = CachedEmbedder(embedder_for(embedder_name), cache / "embeddings")
    started = time.perf_counter()
    index = VectorIndex.create(cache / f"index-{n}", embedder.embedder_id, embedder.dim)
    index.sync(index_items(chunks), embedder.embed_batch)  # what `costlake index` embeds
    index_s = time.perf_counter() - started
    today = max(c.usage_date for c in chunks) + timedelta(days=1)

    def dense(vector: Any, k: int, candidates: Any) -> list[tuple[str, float]]:
        return index.search(vector, k, allowed_chunk_ids=candidates)

    retriever = Retriever(chunks, embedder, dense, accounts=accounts, today=today)
    asked = questions(chunks, per_kind, rng)
    results: dict[str, dict[str, float]] = {}
    per_kind_hybrid: dict[str, list[float]] = {k: [] for k in QUESTION_KINDS}
    for mode in ("dense", "bm25", "hybrid"):
        for use_filters in (False, True):
            recalls, rrs = [], []
            for q in asked:
                got = retriever.retrieve(
                    q["text"], tenant_id=q["tenant"], k=5, mode=mode, use_filters=use_filters
                )
                r, rr = score(got.chunks, q["relevant"], q["tenant"])
                recalls.append(r)
                rrs.append(rr)
                if mode == "hybrid" and use_filters:
                    per_kind_hybrid[q["kind"]].append(r)
            name = f"{mode}{' + filters' if use_filters else ''}"
            results[name] = {"recall@5": statistics.fmean(recalls), "mrr": statistics.fmean(rrs)}
    client = llm_for("offline")
    latencies, grounded = [], 0
    for q in asked:
        t0 = time.perf_counter()
        got = retriever.retrieve(q["text"], tenant_id=q["tenant"], k=5)
        prompt = build_prompt(q["text"], [context_of(c) for c in got.chunks])
        text = client.generate(prompt)
        grounded += check_grounding(text, prompt.context_lines()).grounded
        latencies.append((time.perf_counter() - t0) * 1000)
    latencies.sort()
    return {
        "chunks": len(chunks),
        "questions": len(asked),
        "index_seconds": round(index_s, 2),
        "index_chunks_per_s": round(len(chunks) / index_s, 1),
        "rankers": {k: {m: round(v, 4) for m, v in r.items()} for k, r in results.items()},
        "hybrid_filters_recall_by_kind": {
            k: round(statistics.fmean(v), 4) for k, v in per_kind_hybrid.items()
        },
        "explain_ms_p50": round(latencies[len(latencies) // 2], 2),
        "explain_ms_p95": round(latencies[int(len(latencies) * 0.95) - 1], 2),
        "grounded_share": round(grounded / len(asked), 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, nargs="+", default=[500, 5000], help="corpus sizes")
    parser.add_argument("--questions-per-kind", type=int, default=20)
    parser.add_argument("--embedder", default="minilm", help="minilm (default), hashing, titan, openai")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    summary = []
    with tempfile.TemporaryDirectory(prefix="costlake-rag-eval-") as tmp:
        for n in args.chunks:
            r = run(n, args.questions_per_kind, args.seed, args.embedder, Path(tmp))
            summary.append(r)
            print(f"\n{r['chunks']:,} chunks, {r['questions']} questions, embedder {args.embedder}, "
                  f"indexed in {r['index_seconds']} s ({r['index_chunks_per_s']:,.0f} chunks/s)")  # fmt: skip
            print(f"{'ranker':<20} {'recall@5':>9} {'MRR':>7}")
            for name, m in r["rankers"].items():
                print(f"{name:<20} {m['recall@5']:>9.3f} {m['mrr']:>7.3f}")
            kinds = ", ".join(f"{k} {v:.2f}" for k, v in r["hybrid_filters_recall_by_kind"].items())
            print(f"hybrid + filters by question kind: {kinds}")
            print(f"explain (offline): p50 {r['explain_ms_p50']} ms, p95 {r['explain_ms_p95']} ms, "
                  f"grounded {r['grounded_share']:.0%}")  # fmt: skip
    print("BENCH " + json.dumps(summary))
    worst = min(r["rankers"]["hybrid + filters"]["recall@5"] for r in summary)
    return 0 if worst >= 0.95 else 1


if __name__ == "__main__":
    sys.exit(main())
