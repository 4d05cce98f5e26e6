"""BM25 ranking of chunk texts (rank-bm25's Okapi variant), over the whole corpus or a candidate subset.

Tokens are lower-case alphanumeric runs, so account ids, dates and amounts stay searchable
("2025-03-02" gives "2025", "03", "02"). Service names also yield their parts, so "rds" finds
"AmazonRDS" and the lake's case-folded "amazonrds".

>>> ranker = BM25Ranker([("a", "AmazonRDS spend rose on 2025-03-02"), ("b", "AmazonS3 spend fell"),
...                      ("c", "AWSLambda spend rose")])
>>> [doc_id for doc_id, _ in ranker.rank("why did rds rise")]
['a']
>>> [doc_id for doc_id, _ in ranker.rank("spend rose", candidates={"a", "b"})]
['a', 'b']
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from functools import lru_cache

from rank_bm25 import BM25Okapi

_WORD = re.compile(r"[A-Za-z0-9]+")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
_VENDOR_PREFIXES = ("amazon", "aws")
# Okapi's idf is negative for a term in more than half of the documents (and its epsilon floor is
# negative too in tiny corpora); clamping keeps every shared term a small positive signal, so a
# positive score means "shares at least one token with the query".
_MIN_IDF = 0.01


def camel_parts(word: str) -> list[str]:
    """The CamelCase / digit parts of one word, lower-cased.

    >>> camel_parts("AmazonEC2"), camel_parts("AWSDataTransfer"), camel_parts("AmazonRoute53")
    (['amazon', 'ec', '2'], ['aws', 'data', 'transfer'], ['amazon', 'route', '53'])
    """
    return [part.lower() for part in _CAMEL.findall(word)]


def tokenize(text: str) -> list[str]:
    """Lower-case alphanumeric tokens; a mixed-case or vendor-prefixed word adds its parts after itself.

    >>> tokenize("AmazonRDS cost $1,204.50 on 2025-03-02, account 33411")  # doctest: +NORMALIZE_WHITESPACE
    ['amazonrds', 'amazon', 'rds', 'cost', '1', '204', '50', 'on', '2025', '03', '02',
     'account', '33411']
    >>> tokenize("amazonec2 EC2")
    ['amazonec2', 'ec2', 'ec2']
    """
    tokens: list[str] = []
    for word in _WORD.findall(text):
        tokens.extend(_word_tokens(word))
    return tokens


@lru_cache(maxsize=65536)
def _word_tokens(word: str) -> tuple[str, ...]:
    """The tokens of one word (the same words recur in every chunk: each is split once)."""
    lower = word.lower()
    extra: list[str] = []
    if word not in (lower, word.upper()):
        parts = camel_parts(word)
        extra.extend(parts)
        # "EC2" splits into "ec" + "2": keep the letters+digits part as well
        extra.extend(a + b for a, b in zip(parts, parts[1:], strict=False) if a.isalpha() and b.isdigit())
    for prefix in _VENDOR_PREFIXES:
        if lower.startswith(prefix) and len(lower) - len(prefix) >= 2:
            extra.append(lower[len(prefix) :])
    tokens = [lower, *(part for part in dict.fromkeys(extra) if part != lower)]
    return tuple(tokens)


class BM25Ranker:
    """BM25 over a fixed list of (doc_id, text); ranks all documents or only a candidate subset.

    Only documents that share a token with the query are returned, best first; equal scores are
    ordered by doc_id, so the ranking is deterministic.
    """

    def __init__(self, docs: Iterable[tuple[str, str]]) -> None:
        items: Sequence[tuple[str, str]] = sorted(docs)
        ids = [doc_id for doc_id, _ in items]
        if len(set(ids)) != len(ids):
            raise ValueError("BM25Ranker: duplicate document ids")
        self._ids = ids
        self._position = {doc_id: i for i, doc_id in enumerate(ids)}
        tokenized = [tokenize(text) for _, text in items]
        self._tokens = [set(tokens) for tokens in tokenized]
        self._bm25: BM25Okapi | None = None
        if items:
            self._bm25 = BM25Okapi(tokenized)
            for term, value in self._bm25.idf.items():
                if value < _MIN_IDF:
                    self._bm25.idf[term] = _MIN_IDF

    def __len__(self) -> int:
        return len(self._ids)

    def rank(
        self, query: str, candidates: Collection[str] | None = None, k: int | None = None
    ) -> list[tuple[str, float]]:
        """(doc_id, score) for documents sharing a query token, best first, at most `k`.
        `candidates` restricts scoring to those ids (unknown ids are ignored)."""
        terms = tokenize(query)
        if self._bm25 is None or not terms:
            return []
        if candidates is None:
            positions = list(range(len(self._ids)))
        else:
            positions = sorted(self._position[c] for c in set(candidates) if c in self._position)
        query_terms = set(terms)
        positions = [p for p in positions if not query_terms.isdisjoint(self._tokens[p])]
        if not positions:
            return []
        scores = self._bm25.get_batch_scores(terms, positions)
        ranked = sorted(
            ((self._ids[p], float(s)) for p, s in zip(positions, scores, strict=True)),
            key=lambda pair: (-pair[1], pair[0]),
        )
        return ranked if k is None else ranked[:k]
