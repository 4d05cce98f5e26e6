"""API keys of the HTTP service: who a `Authorization: Bearer <key>` request acts for.

A key is `clk_<8 hex>_<43 characters>`: the first part (`clk_<8 hex>`) is its public id, shown in
listings and used to revoke it; the rest is 32 random bytes from `secrets`, URL-safe base64. Only the
SHA-256 of the whole key is stored. A key with 256 random bits cannot be guessed or brute-forced from
its hash, so it needs no slow password hash (bcrypt, scrypt): the reasoning behind GitHub's and
Stripe's tokens. That keeps `verify`, which runs on every request, at a primary-key lookup and one hash.
The key itself is returned once by `add` and never stored, logged or shown again.

The keys live in one table, `costlake_api_keys`, of the warehouse's SQLite catalog database when it
has one (beside PyIceberg's tables, which this module never reads or writes), else in `keys.db` in the
warehouse's local folder. Nothing is cached here: a revocation by another process is seen by the
next `verify`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import re
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from costlake.errors import InputError, LakeError, first_line
from costlake.lake.storage import is_remote
from costlake.settings import Settings
from costlake.tables import UNASSIGNED_TENANT

TABLE = "costlake_api_keys"
KEY_PREFIX = "clk_"
KEY_ID = re.compile(r"clk_[0-9a-f]{8}")
KEY = re.compile(r"(clk_[0-9a-f]{8})_[A-Za-z0-9_-]{43}")
KEY_LENGTH = 4 + 8 + 1 + 43
BUSY_TIMEOUT_S = 5.0  # a catalog commit holds the database's write lock for milliseconds
MAX_LABEL = 200
_COLUMNS = "key_id, tenant_id, admin, label, created_at, revoked_at"
_SCHEMA = f"""CREATE TABLE IF NOT EXISTS {TABLE} (
    key_id TEXT PRIMARY KEY,
    tenant_id TEXT,
    admin INTEGER NOT NULL,
    label TEXT,
    created_at TEXT NOT NULL,
    revoked_at TEXT,
    sha256 TEXT NOT NULL,
    CHECK ((admin = 1 AND tenant_id IS NULL) OR (admin = 0 AND tenant_id IS NOT NULL))
)"""
SECRETS = "costlake_api_secrets"
_SECRETS_SCHEMA = f"CREATE TABLE IF NOT EXISTS {SECRETS} (name TEXT PRIMARY KEY, value BLOB NOT NULL)"


@dataclass(frozen=True)
class ApiKey:
    """A key as stored and listed: never its secret part."""

    key_id: str  # public prefix of the key, e.g. "clk_3f9a2c7d"
    tenant_id: str | None  # None for an admin key
    admin: bool
    label: str | None
    created_at: dt.datetime  # UTC
    revoked_at: dt.datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def store_path(settings: Settings, root: Path) -> Path:
    """Where the keys of a warehouse live: its SQLite catalog file if it has one, else `keys.db` in
    `root` (a Glue or PostgreSQL catalog, or a remote warehouse's local folder)."""
    if settings.catalog == "sql":
        if settings.catalog_uri is None:
            if not is_remote(settings.warehouse):
                return root / "catalog.db"
        elif (file := sqlite_file(settings.catalog_uri)) is not None:
            return file
    return root / "keys.db"


def sqlite_file(uri: str) -> Path | None:
    """The file of an SQLAlchemy SQLite URI; None for another database or an in-memory one.

    >>> sqlite_file("sqlite:////srv/lake/catalog.db"), sqlite_file("sqlite+pysqlite:///c.db?timeout=3")
    (PosixPath('/srv/lake/catalog.db'), PosixPath('c.db'))
    >>> sqlite_file("postgresql://db/lake"), sqlite_file("sqlite://"), sqlite_file("sqlite:///:memory:")
    (None, None, None)
    """
    dialect, sep, rest = uri.partition("://")
    if not sep or dialect.split("+")[0].lower() != "sqlite" or not rest.startswith("/"):
        return None
    path = rest[1:].split("?")[0]
    if path.startswith("file:"):  # sqlite:///file:path?uri=true
        path = path[len("file:") :]
    return Path(path) if path and path != ":memory:" else None


def _record(row: tuple[object, ...]) -> ApiKey:
    key_id, tenant_id, admin, label, created_at, revoked_at = row
    return ApiKey(
        key_id=str(key_id),
        tenant_id=None if tenant_id is None else str(tenant_id),
        admin=bool(admin),
        label=None if label is None else str(label),
        created_at=dt.datetime.fromisoformat(str(created_at)),
        revoked_at=None if revoked_at is None else dt.datetime.fromisoformat(str(revoked_at)),
    )


def _shown(text: str) -> str:
    """What a refusal may repeat of a typed key id: never a secret part, one short line."""
    if (full := KEY.fullmatch(text)) is not None:
        return full.group(1)
    return text if len(text) <= 40 else text[:40] + "..."


class KeyStore:
    """The API keys of one warehouse, in an SQLite file.

    Each thread keeps its own connection (a process forked after opening makes new ones); every
    statement runs in autocommit mode, so no read holds a lock the catalog's commits would wait for.
    """

    def __init__(self, path: Path, busy_timeout: float = BUSY_TIMEOUT_S) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        try:
            with self._write() as con:
                con.execute(_SCHEMA)
                con.execute(_SECRETS_SCHEMA)
        except sqlite3.DatabaseError as exc:  # a damaged file, a read-only volume
            reason = first_line(exc)
            raise LakeError(
                f"{self.path}: the API-key store cannot be opened for writing ({reason}); the service and "
                "`tenants add-key` need the warehouse writable (a damaged catalog.db: restore a backup)"
            ) from exc

    @classmethod
    def for_settings(cls, settings: Settings, root: Path, busy_timeout: float = BUSY_TIMEOUT_S) -> KeyStore:
        """The key store of the warehouse with these settings; `root` is `Warehouse.root`. A server
        passes a short `busy_timeout`: a request waits that long at most for another process's commit."""
        return cls(store_path(settings, root), busy_timeout)

    def _con(self) -> sqlite3.Connection:
        pid, con = getattr(self._local, "con", (None, None))
        if con is None or pid != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            con = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
            self._local.con = (os.getpid(), con)
        return con

    def close(self) -> None:
        """Close the calling thread's connection (a later call opens a new one)."""
        pid, con = getattr(self._local, "con", (None, None))
        if con is not None and pid == os.getpid():
            con.close()
        self._local.con = (None, None)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taking the write lock at once so the busy timeout applies to it."""
        con = self._con()
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    def add(
        self, tenant_id: str | None, *, admin: bool = False, label: str | None = None
    ) -> tuple[ApiKey, str]:
        """A new key for `tenant_id` (or an admin key, with no tenant): its record and the key itself,
        which the caller must hand over now. Nothing can show it again."""
        if admin and tenant_id is not None:
            raise InputError("an admin key acts for any tenant: give no tenant with --admin")
        if not admin and not tenant_id:
            raise InputError("a key needs a tenant (or --admin for an admin key)")
        if tenant_id == UNASSIGNED_TENANT:  # it would see every account billed before its owner is known
            raise InputError(
                f"'{UNASSIGNED_TENANT}' holds the accounts no tenants file names yet; it gets no key: "
                "assign them with `costlake tenants load` (an admin key can still read them)"
            )
        if label is not None and len(label) > MAX_LABEL:
            raise InputError(f"a key's label has at most {MAX_LABEL} characters, not {len(label)}")
        created = dt.datetime.now(dt.UTC)
        for _ in range(5):  # 32-bit ids: a clash is rare, and a new id resolves it
            key_id = f"{KEY_PREFIX}{secrets.token_hex(4)}"
            key = f"{key_id}_{secrets.token_urlsafe(32)}"
            digest = hashlib.sha256(key.encode()).hexdigest()
            try:
                with self._write() as con:
                    con.execute(
                        f"INSERT INTO {TABLE} ({_COLUMNS}, sha256) VALUES (?, ?, ?, ?, ?, NULL, ?)",
                        (key_id, tenant_id, int(admin), label, created.isoformat(), digest),
                    )
            except sqlite3.IntegrityError:
                continue
            return ApiKey(key_id, tenant_id, admin, label, created, None), key
        raise InputError("could not find a free key id: try again")  # pragma: no cover

    def list(
        self, tenant_id: str | None = None, prefix: str | None = None, include_revoked: bool = True
    ) -> list[ApiKey]:
        """Keys, oldest first: of one tenant, whose id starts with `prefix`, active ones only."""
        sql = f"SELECT {_COLUMNS} FROM {TABLE} WHERE 1 = 1"
        params: list[object] = []
        if tenant_id is not None:
            sql += " AND tenant_id = ?"
            params.append(tenant_id)
        if prefix:  # not LIKE: `_` in every id would be a wildcard
            sql += " AND substr(key_id, 1, ?) = ?"
            params += [len(prefix), prefix]
        if not include_revoked:
            sql += " AND revoked_at IS NULL"
        rows = self._con().execute(sql + " ORDER BY created_at, key_id", params).fetchall()
        return [_record(row) for row in rows]

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke the key with this id, or the one key whose id starts with it. A key revoked before
        keeps its first revocation time. A whole key is taken by its id."""
        wanted = key_id.strip()
        if (full := KEY.fullmatch(wanted)) is not None:
            wanted = full.group(1)
        if not wanted:
            raise InputError("give the id of the key to revoke (costlake tenants list-keys shows them)")
        with self._write() as con:
            ids = [
                row[0]
                for row in con.execute(
                    f"SELECT key_id FROM {TABLE} WHERE substr(key_id, 1, ?) = ?", (len(wanted), wanted)
                )
            ]
            if not ids:
                raise InputError(f"no API key matches {_shown(wanted)!r}")
            if len(ids) > 1 and wanted not in ids:
                raise InputError(f"{_shown(wanted)!r} matches {len(ids)} keys: give more of the id")
            chosen = wanted if wanted in ids else ids[0]
            con.execute(
                f"UPDATE {TABLE} SET revoked_at = COALESCE(revoked_at, ?) WHERE key_id = ?",
                (dt.datetime.now(dt.UTC).isoformat(), chosen),
            )
            row = con.execute(f"SELECT {_COLUMNS} FROM {TABLE} WHERE key_id = ?", (chosen,)).fetchone()
        return _record(row)

    def secret(self, name: str) -> bytes:
        """A random 32-byte secret of the service (e.g. the key of its paging cursors), made by the
        first process that asks and then the same for every worker and host sharing the store."""
        with self._write() as con:
            con.execute(f"INSERT OR IGNORE INTO {SECRETS} VALUES (?, ?)", (name, secrets.token_bytes(32)))
            row = con.execute(f"SELECT value FROM {SECRETS} WHERE name = ?", (name,)).fetchone()
        return bytes(row[0])

    def verify(self, presented: str) -> ApiKey | None:
        """The active key `presented` is, or None (unknown, malformed or revoked). The stored hash is
        compared in constant time; the id it is looked up by is public anyway."""
        if not isinstance(presented, str) or len(presented) != KEY_LENGTH:
            return None
        full = KEY.fullmatch(presented)
        if full is None:
            return None
        row = (
            self._con()
            .execute(f"SELECT {_COLUMNS}, sha256 FROM {TABLE} WHERE key_id = ?", (full.group(1),))
            .fetchone()
        )
        if row is None:
            return None
        digest = hashlib.sha256(presented.encode()).hexdigest()
        if not hmac.compare_digest(digest, str(row[-1])):
            return None
        record = _record(row[:-1])
        return record if record.active else None
