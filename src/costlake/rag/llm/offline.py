"""Provider "offline", the default: no model, no network. A deterministic composer reads the prompt's
structured context and writes one grounded paragraph per anomaly, in retrieval order: what changed, actual
against expected, the dollar and percent impact, spike or sustained step, the top contributors, and a
citation.

Grounded by construction: every number is a context value, written with the project's one formatting rule
(`rag/formatting.py`: cents and tenths of a percent, half-up, thousands separators, as chunk text writes
them) or as written; no totals are computed. A zero baseline is written in words ("with nothing
expected"), since a zero is grounded only by an actual amount, and a zero percentage is left out. As a
last guard each sentence is checked (`grounding.py`), and a sentence with an unsupported number is
replaced by one without numbers. Names are written as the context holds them: names that passed the
name policy, or the labels of withheld ones (`costlake.text.names`); an account whose name was withheld
is named by its id. `FailingClient` ("failing") is the fake that fails on purpose, for retry and
degraded tests.

>>> print(compose_explanation([{"chunk_id": "anom-1", "service_name": "AmazonRDS",
...     "account_id": "334112345678", "usage_date": "2025-03-02", "kind": "spike", "direction": "up",
...     "actual_usd": "1204.50", "expected_usd": "386.2031", "impact_usd": "818.2969",
...     "impact_pct": "211.88", "text": "RDS spend rose."}]))
AmazonRDS spend in account 334112345678 spiked on 2025-03-02: $1,204.50 against an expected $386.20, \
$818.30 (211.9%) above the baseline [anom-1].
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any, Literal

from costlake.rag.chunk_text import account_phrase, dimension_phrase, service_phrase
from costlake.rag.formatting import format_date, format_pct, format_signed_usd, format_usd
from costlake.rag.grounding import ContextFacts, context_facts
from costlake.rag.llm.base import LLMClient, LLMTerminalError, LLMTransientError
from costlake.rag.prompt import Prompt
from costlake.tables import NONE_VALUE

NO_MATCH = (
    "No matching cost anomaly was found in the retrieved data, so the question cannot be answered from it."
)
_PLAIN_DECIMAL = re.compile(r"[-+]?\d+(?:\.\d+)?")
_VERBS = {"spike": "spiked", "dip": "dipped", "mix_shift": "shifted"}
_BY_DIRECTION = {"up": "rose", "down": "fell", "shift": "shifted"}


def _decimal(value: Any) -> Decimal | None:
    """A plain decimal (no exponent, so its digits are in the context as written), else None."""
    if isinstance(value, bool) or value is None:
        return None
    text = format(value, "f") if isinstance(value, Decimal) else str(value).strip()
    return Decimal(text) if _PLAIN_DECIMAL.fullmatch(text) else None


def _day(value: Any) -> str:
    """The usage date as ISO, or as written when it is not a date."""
    if isinstance(value, date):
        return format_date(value)
    try:
        return format_date(str(value))
    except ValueError:
        return str(value) if value else "an unknown date"


def _account(chunk: Mapping[str, Any]) -> str:
    name, number = chunk.get("account_name"), chunk.get("account_id")
    if number:
        return account_phrase(str(number), str(name) if name else None, name_first=True)
    return f"account {name}" if name else "an account"


def _change(chunk: Mapping[str, Any]) -> str:
    """What changed, when, and by how much against the baseline (dollars, percent)."""
    service = service_phrase(chunk) if chunk.get("service_name") else "A service"
    kind, day = str(chunk.get("kind") or ""), _day(chunk.get("usage_date"))
    actual, expected = _decimal(chunk.get("actual_usd")), _decimal(chunk.get("expected_usd"))
    impact, pct = _decimal(chunk.get("impact_usd")), _decimal(chunk.get("impact_pct"))
    days = chunk.get("duration_days")
    days = days if isinstance(days, int) and not isinstance(days, bool) and days > 0 else None
    ongoing = chunk.get("ongoing") is True
    where = f"{service} spend in {_account(chunk)}"

    if kind == "new_service":
        head = f"{service} is new in {_account(chunk)}, first billed on {day}"
    elif kind == "dropped_to_zero":
        head = f"{where} dropped to zero on {day}"
    elif kind in ("step_up", "step_down"):
        up = kind == "step_up"
        step = [f"a step {'up' if up else 'down'}"]
        if days is not None:
            step[0] += f" lasting {days} day{'s' if days != 1 else ''}"
        step += ["still ongoing"] if ongoing else []
        level = "higher" if up else "lower"
        head = f"{where} has run at a sustained {level} level since {day} ({', '.join(step)})"
    else:
        verb = _VERBS.get(kind) or _BY_DIRECTION.get(str(chunk.get("direction")), "changed")
        head = f"{where} {verb} on {day}"
        if days is not None and days > 1:
            head += f" for {days} days"
        head += " and is still ongoing" if ongoing else ""

    parts = []
    if actual is not None and expected == 0:  # a zero baseline is "nothing", not a $0.00 to cite
        parts.append(f"{format_usd(actual)} with nothing expected")
    elif actual is not None and expected is not None:
        parts.append(f"{format_usd(actual)} against an expected {format_usd(expected)}")
    elif actual is not None:
        parts.append(f"actual spend {format_usd(actual)}")
    if actual is not None and actual < 0:
        parts.append("credits exceeded charges, so net spend was negative")
    if impact is not None and impact != 0:
        size = format_usd(abs(impact)) + (f" ({format_pct(abs(pct))})" if pct else "")  # not a zero %
        parts.append(f"{size} {'above' if impact > 0 else 'below'} the baseline")
    elif impact is not None:
        parts.append("no net change in total")
    return head + (": " + ", ".join(parts) if parts else "")


def _contributors(chunk: Mapping[str, Any], top: int = 3) -> str:
    """'Most of the increase came from region us-east-1 (+$790.10: $900.00 against $109.90 expected).
    By pricing model: reserved (+$790.10: ...).'

    Causes are listed per dimension, the dimension detection ranked first leading: the regions of a
    change and its pricing models are two views of the same dollars, never listed as if they added
    up. A mix shift names only its own dimension."""
    by_dimension: dict[str, list[tuple[str, str]]] = {}  # dimension -> (value, detail)
    for item in chunk.get("contributors") or []:
        if not isinstance(item, Mapping):
            continue
        amount = _decimal(item.get("contribution_usd"))
        if amount is None or amount == 0 or not item.get("value") or item["value"] == NONE_VALUE:
            continue  # a bill without the dimension says nothing about where the change was
        dimension = str(item.get("dimension") or "group")
        detail = format_signed_usd(amount)
        actual, expected = _decimal(item.get("actual_usd")), _decimal(item.get("expected_usd"))
        if actual is not None and expected == 0:
            detail += f": {format_usd(actual)} with nothing expected"
        elif actual is not None and expected is not None:
            detail += f": {format_usd(actual)} against {format_usd(expected)} expected"
        by_dimension.setdefault(dimension, []).append((str(item["value"]), detail))
    if not by_dimension:
        return ""
    (first, rows), *others = by_dimension.items()  # the order detection ranked them: the root cause first
    named = [f"{dimension_phrase(first, value)} ({detail})" for value, detail in rows[:top]]
    if chunk.get("kind") == "mix_shift" or chunk.get("direction") == "shift":
        return f"Spend moved between {_listed(named)}."
    impact = _decimal(chunk.get("impact_usd"))
    change = "increase" if impact is None or impact > 0 else "decrease"
    sentences = [f"Most of the {change} came from {_listed(named)}."]
    for dimension, rows in others:
        # "By region: us-east-1 (...)": the dimension is said once; a withheld value's label is whole.
        shown = [f"{value} ({detail})" for value, detail in rows[:top]]
        sentences.append(f"By {dimension.replace('_', ' ')}: {_listed(shown)}.")
    return " ".join(sentences)


def _listed(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _paragraph(chunk: Mapping[str, Any], context: ContextFacts) -> str:
    cite = f" [{chunk['chunk_id']}]"
    sentences = [_change(chunk) + cite + "."]
    if contributors := _contributors(chunk):
        sentences.append(contributors)
    kept = []
    for sentence in sentences:
        if context.unsupported(sentence):  # a guard: the rules above should never get here
            sentence = f"The retrieved anomaly{cite} could not be summarised without unsupported numbers."
        kept.append(sentence)
    return " ".join(kept)


def compose_explanation(
    chunks: Sequence[Mapping[str, Any]], max_anomalies: int = 5, facts: ContextFacts | None = None
) -> str:
    """The grounded explanation of `chunks` (the prompt's context, in order, at most `max_anomalies`);
    `facts`, when given, are `context_facts(chunks)` (`Prompt.facts`), used when every chunk has an id."""
    usable = [c for c in chunks if isinstance(c.get("chunk_id"), str) and c["chunk_id"]]
    if not usable:
        return NO_MATCH
    context = facts if facts is not None and len(usable) == len(chunks) else context_facts(usable)
    paragraphs = [_paragraph(chunk, context) for chunk in usable[:max_anomalies]]
    if len(paragraphs) == 1:
        return paragraphs[0]
    lines = ["Several cost anomalies were retrieved; each is explained below with its source."]
    lines += [f"- {p}" for p in paragraphs]
    if len(usable) > max_anomalies:
        lines.append("Further matching anomalies were retrieved but are not described here.")
    return "\n".join(lines)


class OfflineClient(LLMClient):
    """The default provider: the deterministic composer behind the LLM interface."""

    name = "offline"
    model = "composer"

    def __init__(self, *, max_anomalies: int = 5, **options: Any) -> None:
        super().__init__(**options)
        self.max_anomalies = max_anomalies

    def _complete(self, prompt: Prompt) -> str:
        return compose_explanation(prompt.context, self.max_anomalies, prompt.facts)


class FailingClient(OfflineClient):
    """A provider that fails on purpose: its first `failures` calls raise (every call when None), later ones
    answer like "offline". The fake for retry, backoff and degraded-mode tests; `calls` counts attempts."""

    name = "failing"
    model = "failing"

    def __init__(
        self,
        *,
        failures: int | None = None,
        error: Literal["transient", "terminal"] = "transient",
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.failures, self.error, self.calls = failures, error, 0

    def _complete(self, prompt: Prompt) -> str:
        self.calls += 1
        if self.failures is None or self.calls <= self.failures:
            if self.error == "terminal":
                raise LLMTerminalError(f"failing: injected terminal failure on call {self.calls}")
            raise LLMTransientError(f"failing: injected transient failure on call {self.calls}")
        return super()._complete(prompt)
