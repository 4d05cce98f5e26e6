"""What belongs to whom in the lake of tests/many_tenants.py: per account its id, name, chunk ids and
figures (as the API writes them and as explanations format them), so a test can say, for one owner
assignment, which strings only other tenants may ever see."""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from costlake.lake.warehouse import Warehouse
from costlake.rag.chunks import read_jsonl
from costlake.rag.indexer import CHUNKS_FILE, rag_folder
from many_tenants import ACCOUNTS, rows

MIN_SIGNIFICANT = 5  # shorter figures are too likely to occur by chance
_FIGURES = (
    "actual_usd",
    "expected_usd",
    "impact_usd",
    "expected_low_usd",
    "expected_high_usd",
    "impact_pct",
    "score",
)


def figure_forms(value: Decimal) -> set[str]:
    """How a figure can appear: exact (normalised; trailing zeros are matched by `Oracle.leaks`),
    in cents with and without thousands separators, and rounded to whole dollars with separators."""
    exact = value.normalize()
    cents = value.quantize(Decimal("0.01"))
    forms = {f"{exact:f}", f"{cents:f}", f"{abs(cents):,.2f}", f"{abs(value):,.0f}"}
    return {f for f in forms if sum(c.isdigit() for c in f.lstrip("-0.,")) >= MIN_SIGNIFICANT}


def _pattern(figure: str) -> str:
    """A figure not inside a longer number (trailing zeros allowed: `12.50` matches `12.500000`)."""
    body = re.escape(figure.lstrip("-"))
    tail = "0*" if "." in figure else r"(?![.,]\d)"
    return rf"(?<![\d.,]){body}{tail}(?!\d)"


@dataclass
class Oracle:
    chunks: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # account -> chunk ids
    figures: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # account -> figures
    daily: dict[tuple[str, dt.date], tuple[Decimal, Decimal]] = field(default_factory=dict)
    service_of: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, wh: Warehouse) -> Oracle:
        found = cls()
        for chunk in read_jsonl(rag_folder(wh) / CHUNKS_FILE):
            found.chunks[chunk.account_id].add(chunk.chunk_id)
            meta = chunk.metadata
            for name in _FIGURES:
                if meta.get(name) is not None:
                    found.figures[chunk.account_id] |= figure_forms(Decimal(str(meta[name])))
            for c in meta.get("contributors", []):
                for name in ("actual_usd", "expected_usd", "contribution_usd"):
                    found.figures[chunk.account_id] |= figure_forms(Decimal(c[name]))
        for _, day, account, service, cost, effective, *_ in rows():
            found.daily[(account, dt.date.fromisoformat(day))] = (Decimal(cost), Decimal(effective))
            found.service_of[account] = service
            found.figures[account] |= figure_forms(Decimal(cost)) | figure_forms(Decimal(effective))
        return found

    def own_figures(self, accounts: Iterable[str]) -> set[str]:
        """Every figure the tenant of `accounts` may see: its accounts' own, and their daily costs
        summed per service (GET /costs/daily?group_by=service)."""
        accounts = set(accounts)
        found: set[str] = set()
        sums: dict[tuple[str, dt.date], list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
        for account in accounts:
            found |= self.figures[account]
        for (account, day), (cost, effective) in self.daily.items():
            if account in accounts:
                pair = sums[(self.service_of[account], day)]
                pair[0] += cost
                pair[1] += effective
        for cost, effective in sums.values():
            found |= figure_forms(cost) | figure_forms(effective)
        return found

    def forbidden(self, owners: Mapping[str, str], tenant: str) -> tuple[set[str], re.Pattern[str] | None]:
        """What only other tenants may see: (ids, names and chunk ids; a pattern of their figures)."""
        mine = {a for a, t in owners.items() if t == tenant}
        theirs = set(ACCOUNTS) - mine
        own_chunks = set().union(*(self.chunks[a] for a in mine))
        words = set(theirs) | {ACCOUNTS[a] for a in theirs}
        words |= set().union(*(self.chunks[a] for a in theirs)) - own_chunks
        figures = set().union(*(self.figures[a] for a in theirs)) - self.own_figures(mine)
        pattern = re.compile("|".join(_pattern(f) for f in sorted(figures))) if figures else None
        return words, pattern

    def leaks(self, owners: Mapping[str, str], tenant: str, text: str) -> list[str]:
        words, pattern = self.forbidden(owners, tenant)
        found = sorted(w for w in words if w in text)
        return found + ([m.group(0) for m in pattern.finditer(text)] if pattern else [])
