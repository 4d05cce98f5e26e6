"""Cursors fit the limit the routes put on them, whatever name the page's last row carries.

A cursor seals a reader's position, which names the sort key of the last row given; a service name may
be as long as ingestion allows (`max_field_bytes`, 4096 UTF-8 bytes by default). A review found a page
ending on such a name handing out a cursor the next request refused (422): paging stopped there."""

from __future__ import annotations

import base64
import datetime as dt
import random
import zlib
from decimal import Decimal

import pytest

from costlake.api.cursors import Cursors, query_digest
from costlake.api.limits import ACCOUNT_ID_CHARS, CURSOR_CHARS
from costlake.api.problems import Problem
from costlake.catalog.filters import Keyset
from costlake.errors import InputError
from costlake.sources.base import RowLimits

MAX_BYTES = RowLimits().max_field_bytes


def _longest_names(seed: int) -> list[str]:
    """Names of exactly MAX_BYTES UTF-8 bytes that compress badly: random printable ASCII, random 3-byte
    CJK, random 4-byte characters, mostly random control characters (JSON writes each as six), and one
    character repeated (the first reviewer's `"A" * 4096`)."""
    rng = random.Random(seed)
    ascii_ = "".join(chr(rng.randrange(0x21, 0x7F)) for _ in range(MAX_BYTES))
    cjk = "".join(chr(rng.randrange(0x4E00, 0x9FFF)) for _ in range(MAX_BYTES // 3))
    astral = "".join(chr(rng.randrange(0x1F300, 0x1F5FF)) for _ in range(MAX_BYTES // 4))
    controls = "".join(chr(rng.randrange(1, 32)) if rng.random() < 0.7 else "x" for _ in range(MAX_BYTES))
    return [ascii_, cjk, astral, controls, "A" * MAX_BYTES]


@pytest.mark.parametrize("name", _longest_names(7), ids=["ascii", "cjk", "astral", "controls", "repeated"])
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


def test_a_position_that_would_inflate_beyond_any_real_one_is_refused() -> None:
    keyset = Keyset("anomalies/date", ("usage_date", "account_id"))
    bomb = base64.urlsafe_b64encode(zlib.compress(b"[" + b" " * (2 << 20) + b"]", 9)).decode()
    with pytest.raises(InputError, match="is not one this listing"):
        keyset.after(bomb)
