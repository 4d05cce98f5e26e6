"""`costlake index` and `costlake explain`: the explanation layer from the command line."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from costlake.cli.context import check_choice, out, printable, state, warn
from costlake.cli.progress import progress_bars
from costlake.text.terminal import escape_controls

if TYPE_CHECKING:
    from costlake.rag.explain import ExplainResult

app = typer.Typer()


@app.command()
def index() -> None:
    """Build or update the explanation index from the detected anomalies.

    One chunk per anomaly (JSONL), embeddings cached by content, one FAISS index per embedder; only
    new or changed chunks are embedded."""
    from costlake.rag.indexer import build_index

    wh = state.warehouse()
    with progress_bars():
        report = build_index(wh)
    out.print(
        f"{report.chunks:,} chunks in {report.folder} ({report.embedder_id}): +{report.added} added, "
        f"{report.changed} changed, -{report.removed} removed, {report.unchanged} unchanged; "
        f"{report.embedded} embedded in {report.seconds:.1f} s"
    )


@app.command()
def explain(
    question: Annotated[str, typer.Argument(help='A question, e.g. "why did EC2 spend jump on March 3?"')],
    tenant: Annotated[
        str | None, typer.Option(help="Answer from this tenant's accounts only (default: every tenant).")
    ] = None,
    k: Annotated[int, typer.Option("--k", help="Anomalies to retrieve.", min=1, max=50)] = 5,
    fmt: Annotated[str, typer.Option("--format", help="text or json (the API's shape).")] = "text",
) -> None:
    """Answer a question about costs: why something changed (from the detected anomalies, with
    citations; see `costlake index`), the biggest anomalies ranked by impact, how much was spent,
    two periods compared, or what is growing (from the published tables, exact to the cent).

    Relative dates ("last month", "Q1", "since March") count from the latest complete day; the answer
    says which intent and which dates it used. Names from billing files that read like text are
    shown as labels, e.g. `service 3f2a9c (name withheld)`; an unknown --tenant is an error."""
    from costlake.rag.explain import Explainer

    check_choice("--format", fmt, ("text", "json"))
    explainer = Explainer(state.warehouse())
    result = explainer.explain(question, tenant=tenant, k=k)
    if explainer.stale:
        warn(
            "warning: anomalies or account names changed since the index was built; "
            "run `costlake index` to update it"
        )
    if fmt == "json":
        sys.stdout.write(json.dumps(result.model_dump(mode="json"), indent=2) + "\n")
        return
    # The model's text, and the names it quotes, are data: shown, never obeyed by the terminal.
    out.print(printable(result.explanation), markup=False, highlight=False)
    if result.citations:
        out.print("\nSources:", markup=False)
        for c in result.citations:
            out.print(
                escape_controls(
                    f"  [{c.chunk_id}] {c.usage_date} account {c.account_id} {c.service_name} "
                    f"impact {c.impact_usd}"
                ),
                markup=False,
                highlight=False,
            )
    _warn(result)
    dates = f", {result.date_from} to {result.date_to}" if result.date_from and result.date_to else ""
    out.print(f"\nRead as: {result.intent}{dates}.", markup=False, highlight=False, style="dim")
    read = "rows read" if result.intent in ("lookup", "comparison", "trend") else "retrieved"
    out.print(
        f"{result.provider}: {result.retrieved_context_count} {read} in "
        f"{result.retrieval_ms:.0f} ms, generated in {result.generation_ms:.0f} ms",
        markup=False,
        style="dim",
    )


def _warn(result: ExplainResult) -> None:
    """One warning line on stderr when the answer is not the model's grounded text."""
    unsupported = ", ".join(result.unsupported)
    if result.degraded_reason == "provider_error":
        warn("warning: the LLM provider failed; showing the retrieved anomalies (degraded)")
    elif result.degraded_reason == "ungrounded":
        warn(
            "warning: the model's answer was not grounded (not in the retrieved context: "
            f"{unsupported}); showing the offline composition (degraded)"
        )
    elif not result.grounded:
        warn(f"warning: not found in the retrieved context: {unsupported}")
