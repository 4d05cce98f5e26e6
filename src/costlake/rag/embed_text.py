"""The text an anomaly chunk is embedded as: its fields that help dense ranking, in few tokens.

The chunk's sentence (`chunk_text.py`) is written for people and models and runs to about a hundred
tokens: amounts, ranges, percentages and the method, which a sentence embedding hardly tells apart
but which the encoder pays for token by token. Dense ranking works among the candidates the filters
left (tenant, account, service, dates, direction) and has to tell apart what a question says in
words: the service, what kind of change it was and which way, whose account, which day, and what
carried it. BM25 still ranks the full sentence, where amounts and ids match word for word.

Everything comes from the shown metadata, whose names already passed the name policy
(`costlake.text.names`): a withheld name appears as its label, as it does in the sentence.

>>> embed_text({"usage_date": "2025-03-02", "account_id": "334112345678", "account_name": "payments-prod",
...     "service_name": "AmazonRDS", "kind": "spike", "direction": "up", "ongoing": False,
...     "top_dimension": None, "contributors": [{"dimension": "region", "value": "us-east-1",
...     "contribution_usd": "790.1"}]})
'AmazonRDS spike, a sudden cost increase; account payments-prod; March 2, 2025; region us-east-1'
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import date
from typing import Any

from costlake.rag.chunk_text import account_phrase, dimension_phrase, sanitize_label
from costlake.rag.formatting import format_long_date
from costlake.text.names import is_label

#: names the recipe below; it is part of every `embed_hash`, so changing the recipe re-embeds every
#: chunk at the next `costlake index` instead of mixing vectors of two recipes in one index
RECIPE = "compact-2"

_KIND_WORDS = {
    "spike": "spike, a sudden cost increase",
    "dip": "dip, a sudden cost decrease",
    "step_up": "step up, a lasting cost increase",
    "step_down": "step down, a lasting cost decrease",
    "new_service": "new service, spending started",
    "dropped_to_zero": "dropped to zero, spending stopped",
    "mix_shift": "mix shift, spend moved",
}
_DIRECTION_WORDS = {"up": "cost increase", "down": "cost decrease"}


def embed_text(meta: Mapping[str, Any]) -> str:
    """The embedding text of one chunk's shown metadata (as `build_chunks` makes it); deterministic."""
    service = str(meta.get("service_name") or "") or "an unnamed service"
    kind = str(meta.get("kind") or "")
    change = _KIND_WORDS.get(kind)
    if change is None:
        direction = _DIRECTION_WORDS.get(str(meta.get("direction")), "cost change")
        change = f"{sanitize_label(kind) or 'anomaly'}, a {direction}"
    parts = [
        f"{service} {change}" + (", ongoing" if meta.get("ongoing") else ""),
        _account(meta),
        # "March 2, 2025": the weekday adds tokens no question ranks by (filters read weekdays)
        format_long_date(date.fromisoformat(str(meta["usage_date"]))).split(", ", 1)[1],
    ]
    movers = _movers(meta)
    if movers:
        parts.append(", ".join(movers))
    return "; ".join(parts)


def embed_hash(text: str) -> str:
    """What decides whether an indexed vector is still right: the recipe and the embedding text (not
    the amounts or the sentence, which do not reach the vector)."""
    return hashlib.sha256(f"{RECIPE}\0{text}".encode()).hexdigest()


def _account(meta: Mapping[str, Any]) -> str:
    """The account by its shown name; by its id (or label) when the name is withheld or missing. Ids
    cost many tokens and say nothing a sentence embedding can match: the filters read them."""
    account_id, name = str(meta.get("account_id") or "unknown"), meta.get("account_name")
    if name and name != account_id and not is_label(str(name)):
        return f"account {name}"
    return account_phrase(account_id, name)


def _movers(meta: Mapping[str, Any]) -> list[str]:
    """Up to two contributors of the first one's dimension, in detection's order (else the top one):
    the values that carried the change, e.g. "region us-east-1"."""
    items = [(str(c["dimension"]), str(c["value"])) for c in meta.get("contributors") or []]
    if not items and meta.get("top_dimension") and meta.get("top_value"):
        items = [(str(meta["top_dimension"]), str(meta["top_value"]))]
    if not items:
        return []
    first = items[0][0]
    phrases = [dimension_phrase(d, v) for d, v in items if d == first]
    return list(dict.fromkeys(phrases))[:2]


__all__ = ["RECIPE", "embed_hash", "embed_text"]
