"""The explain prompt: the question, the retrieved anomaly chunks as one JSON object per line inside a
delimited CONTEXT block, and the rules the model must follow. `parse_context` reads the block back.

The output is deterministic (sorted keys, fixed field list), so the same retrieval gives the same prompt.
Money stays exact: `Decimal` values are written as plain decimal strings, floats are refused.

>>> chunk = {"chunk_id": "anom-1", "text": "AmazonRDS rose.", "actual_usd": Decimal("1204.50"), "score": 0.93}
>>> context_line(chunk)
'{"actual_usd": "1204.50", "chunk_id": "anom-1", "text": "AmazonRDS rose."}'
>>> parse_context(build_prompt("Why did RDS cost rise?", [chunk]))[0]["actual_usd"]
'1204.50'
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from costlake.errors import InputError

BEGIN = "<<<CONTEXT"
END = "CONTEXT>>>"

#: The chunk fields the model sees. Anything else a retriever attaches (scores, vectors) is not context:
#: its numbers would become "facts" the model could cite.
CONTEXT_FIELDS = (
    "chunk_id",
    "tenant_id",
    "account_id",
    "account_name",
    "service_name",
    "usage_date",
    "direction",
    "kind",
    "actual_usd",
    "expected_usd",
    "impact_usd",
    "impact_pct",
    "duration_days",
    "ongoing",
    "contributors",
    "text",
)

INSTRUCTIONS = """\
INSTRUCTIONS:
- Explain causality for each relevant anomaly: what changed (service, account, date), by how much (actual
  against the expected baseline, in dollars and percent), whether it was a one-day spike or a sustained step
  (and since when, for how long), and which contributors (region, pricing model, charge category) drove it.
- Cite the chunk_id of every anomaly you use in square brackets, like [anom-...].
- Use only numbers that appear in the CONTEXT, written as they appear there or rounded to cents. Do not add,
  subtract, total or average numbers into new ones.
- If the CONTEXT is empty or does not answer the question, say so plainly instead of guessing.
- Answer in a few short sentences of prose. Never output tables, JSON or code."""


def _plain(value: Any, where: str) -> Any:
    """`value` with Decimals and dates as strings; floats refused (money must stay exact)."""
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return value
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        raise InputError(f"{where} is a float ({value!r}); pass money and percentages as Decimal or str")
    if isinstance(value, Mapping):
        return {str(k): _plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise InputError(f"{where} has unsupported type {type(value).__name__}")


def context_line(chunk: Mapping[str, Any]) -> str:
    """One chunk as the single JSON line the prompt shows (and the grounding check reads)."""
    chunk_id = chunk.get("chunk_id")
    if not isinstance(chunk_id, str) or not chunk_id:
        raise InputError(f"retrieved chunk has no chunk_id: keys {sorted(chunk)}")
    if not isinstance(chunk.get("text"), str):
        raise InputError(f"retrieved chunk {chunk_id} has no text")
    shown = [key for key in CONTEXT_FIELDS if key in chunk]
    fields = {key: _plain(chunk[key], f"chunk {chunk_id} field {key}") for key in shown}
    return json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(", ", ": "))


def context_lines(chunks: Sequence[Mapping[str, Any]]) -> list[str]:
    """The CONTEXT block's lines, in retrieval order: pass these to `check_grounding`."""
    return [context_line(chunk) for chunk in chunks]


def build_prompt(question: str, chunks: Sequence[Mapping[str, Any]]) -> str:
    """The full prompt for one explain request."""
    if not isinstance(question, str) or not question.strip():
        raise InputError("the question is empty: ask about an account, a service or a date")
    # One line, so no line of the question can pass for a context marker.
    one_line = " ".join(question.split())
    lines = context_lines(chunks)
    return "\n".join(
        [
            "You explain cloud-cost anomalies to an engineer, using only the retrieved CONTEXT below.",
            "",
            f"QUESTION: {one_line}",
            "",
            "CONTEXT: retrieved anomalies, one JSON object per line between the markers. Money fields",
            "are USD decimal strings; impact_pct is a percentage; contributors split the change by region,",
            "pricing model or charge category. An empty block means no anomaly matched.",
            BEGIN,
            *lines,
            END,
            "",
            INSTRUCTIONS,
            "",
        ]
    )


def context_block(prompt: str) -> list[str]:
    """The raw lines between the CONTEXT markers of a prompt made by `build_prompt`."""
    lines = prompt.splitlines()
    try:
        start = lines.index(BEGIN)
        stop = lines.index(END, start + 1)
    except ValueError:
        raise InputError(f"the prompt has no {BEGIN} ... {END} block: build it with build_prompt") from None
    return lines[start + 1 : stop]


def parse_context(prompt: str) -> list[dict[str, Any]]:
    """The chunks in a prompt's CONTEXT block, as JSON objects (money comes back as strings)."""
    chunks: list[dict[str, Any]] = []
    for number, line in enumerate(context_block(prompt), start=1):
        try:
            chunk = json.loads(line, parse_float=Decimal)
        except json.JSONDecodeError as exc:
            raise InputError(f"context line {number} is not JSON ({exc.msg})") from None
        if not isinstance(chunk, dict):
            raise InputError(f"context line {number} is not a JSON object")
        chunks.append(chunk)
    return chunks
