"""Paging cursors that are opaque and bound to what made them (Google's AIP-158).

A reader's page position (catalog/filters.py `Keyset`) names the sort key of the last row given. The
API never hands it out as it is: it encrypts it together with the tenant and a digest of the query
(route, filters, sort) under the warehouse's cursor secret (Fernet: AES-128-CBC with HMAC-SHA256, from
the `cryptography` package). A cursor cannot be read, forged or edited; replayed by another tenant, or
with other filters, it is refused (400) before anything is read. The page size may change between
pages, as AIP-158 allows.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zlib
from collections.abc import Mapping
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from costlake.api.problems import Problem
from costlake.catalog.filters import inflate


def query_digest(route: str, query: Mapping[str, Any]) -> str:
    """A digest of what a cursor may continue: the route and every filter and sort (not the size)."""
    canonical = json.dumps([route, sorted((k, str(v)) for k, v in query.items() if v is not None)])
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


class Cursors:
    def __init__(self, secret: bytes) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(hashlib.sha256(secret).digest()))

    def seal(self, tenant: str, digest: str, position: str) -> str:
        """The cursor of `position` for this tenant and query."""
        text = json.dumps({"t": tenant, "q": digest, "p": position}, separators=(",", ":"))
        # Compressed before it is sealed: a position that names a long name stays short enough for a URL.
        return self._fernet.encrypt(zlib.compress(text.encode(), 9)).decode()

    def open(self, cursor: str, tenant: str, digest: str) -> str:
        """The position inside `cursor`; a 400 unless this tenant made it for this very query."""
        try:
            found = json.loads(inflate(self._fernet.decrypt(cursor.encode("ascii", "strict"))))
            if found["t"] == tenant and found["q"] == digest and isinstance(found["p"], str):
                return str(found["p"])
        except (InvalidToken, UnicodeError, ValueError, KeyError, TypeError, zlib.error):
            pass
        raise Problem(
            400,
            "invalid-cursor",
            "this cursor was not made by this query for this tenant; start again without it",
        )
