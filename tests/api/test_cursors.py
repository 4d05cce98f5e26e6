"""Cursors fit the limit the routes put on them, whatever name the page's last row carries.

A cursor seals a reader's position, which names the sort key of the last row given; a service name may
be as long as ingestion allows (`max_field_bytes`, 4096 UTF-8 bytes by default). A review found a page
ending on such a name handing out a cursor the next request refused (422): paging stopped there."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest

from costlake.api.cursors import Cursors, query_digest
from costlake.api.limits import ACCOUNT_ID_CHARS, CURSOR_CHARS
from costlake.api.problems import Problem
from costlake.catalog.filters import Keyset
from costlake.sources.base import RowLimits

MAX_BYTES = RowLimits().max_field_bytes


def _longest_names(seed: int) -> list[str]:
    """Names of exactly MAX_BYTES UTF-8 bytes that compress badly: random ASCII, random 3-byte CJK,
    random 4-byte characters, and one character repeated (the reviewer's `"A" * 4096`)."""
    rng = random.Random(seed)
    ascii_ = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789-_") for _ in range(MAX_BYTES))
    cjk = "".join(chr(rng.randrange(0x4E00, 0x9FFF)) for _ in range(MAX_BYTES // 3))
    astral = "".join(chr(rng.randrange(0x1F300, 0x1F5FF)) for _ in range(MAX_BYTES // 4))
    return [ascii_, cjk, astral, "A" * MAX_BYTES]


@pytest.mark.parametrize("name", _longest_names(7), ids=["ascii", "cjk", "astral", "repeated"])
def test_a_cursor_after_the_longest_name_fits_the_routes_limit_and_opens(name: str) -> None:
    assert len(name.encode()) <= MAX_BYTES
    cursors = Cursors(b"secret")
    keyset = Keyset("anomalies/-impact", ("-size", "usage_date", "account_id", "service_name", "kind"))
    row = {
        "size": Decimal("-123456789012345678.123456789012"),
        "usage_date": dt.date(2025, 1, 2),
        "account_id": "9" * ACCOUNT_ID_CHARS,
        "service_name": name,
        "kind": "step_down",
    }
    position = keyset.position(row)
    digest = query_digest("/anomalies", {"sort": "-impact", "kind": None})
    cursor = cursors.seal("tenant-" + "x" * ACCOUNT_ID_CHARS, digest, position)
    assert len(cursor) <= CURSOR_CHARS
    assert cursors.open(cursor, "tenant-" + "x" * ACCOUNT_ID_CHARS, digest) == position
    _, params = keyset.after(position)
    assert name in params  # the position still names the row exactly


def test_a_cursor_of_another_tenant_or_an_edited_one_is_refused() -> None:
    cursors = Cursors(b"secret")
    cursor = cursors.seal("a", "q", "p")
    assert cursors.open(cursor, "a", "q") == "p"
    for tenant, digest, text in (("b", "q", cursor), ("a", "r", cursor), ("a", "q", cursor[:-4] + "AAAA")):
        with pytest.raises(Problem):
            cursors.open(text, tenant, digest)
