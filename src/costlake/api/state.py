"""What one worker keeps between requests: the warehouse, the explanation layer with its index and
model loaded once, each tenant's accounts and anchor day, and the API keys it has checked.

Nothing here goes stale. Every request compares the lake's version (each table's current metadata
file, read from the local catalog database: one SQLite query; a remote catalog is asked at most every
`REMOTE_VERSION_SECONDS`) and the index files' (size, mtime) with what the view was built from; when
either moved, the request builds a fresh view (the embedding model and the LLM client are kept: they
are per process). So a tenants load that moves an account is in force from the next request. A key is
re-checked against the key store at least every `KEY_RECHECK_SECONDS`, so a revocation reaches every
worker within that time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from costlake.errors import ConfigError, first_line
from costlake.lake.api_keys import ApiKey, KeyStore
from costlake.lake.metadata import CATALOG_NAME, LocalMetadata
from costlake.lake.warehouse import Warehouse
from costlake.rag.explain import Explainer
from costlake.rag.indexer import CHUNKS_FILE, SOURCE_FILE, rag_folder
from costlake.settings import Settings
from costlake.tables import DIM_ACCOUNT, NAMESPACE, TABLES, UNASSIGNED_TENANT

log = logging.getLogger(__name__)
KEY_RECHECK_SECONDS = 2.0
LOCAL_VERSION_SECONDS = 0.0  # the lake's version is read on every request (a local catalog: ~0.1 ms)
REMOTE_VERSION_SECONDS = 5.0  # ... and for a remote one (a catalog round trip per table)
MAX_CACHED_KEYS = 10_000
# How long a request waits for another process's commit to the catalog database before it is a 503
# (`busy`): commits take milliseconds, and the checks run on the event loop, which must not stall.
BUSY_SECONDS = 0.25


@dataclass
class View:
    """The lake as of one version: built lazily, thrown away whole when the version moves."""

    version: Any
    explainer: Explainer
    owners: dict[str, str]  # account_id -> tenant_id
    anchors: dict[str, dt.date] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def accounts(self, tenant: str) -> frozenset[str]:
        """The tenant's accounts (empty for an unknown tenant), grouped once per view."""
        return self._by_tenant.get(tenant, frozenset())

    @cached_property
    def _by_tenant(self) -> dict[str, frozenset[str]]:
        grouped: dict[str, set[str]] = {}
        for account, tenant in self.owners.items():
            grouped.setdefault(tenant, set()).add(account)
        return {tenant: frozenset(found) for tenant, found in grouped.items()}

    def anchor(self, tenant: str) -> dt.date:
        """The tenant's latest complete day (`Explainer.anchor`), read once per version."""
        found = self.anchors.get(tenant)
        if found is None:
            found = self.anchors[tenant] = self.explainer.anchor(tenant)
        return found


class ServiceState:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.wh = Warehouse(settings)
        self.keys = KeyStore.for_settings(settings, self.wh.root, busy_timeout=BUSY_SECONDS)
        self._metadata = (
            LocalMetadata(self.wh.root, NAMESPACE)
            if not self.wh.remote and settings.catalog == "sql" and not settings.catalog_uri
            else None
        )
        self._view: View | None = None
        self._version: Any = None
        self._version_read = 0.0
        self._lock = threading.Lock()
        self._local = threading.local()  # each thread's read-only connection to the catalog database
        self._checked: dict[str, tuple[ApiKey | None, float]] = {}
        self.rag = rag_folder(self.wh, create=False)

    # -- keys ---------------------------------------------------------------------------------------
    def key(self, presented: str) -> ApiKey | None:
        """The key's record when it is valid now (checked against the store at most
        `KEY_RECHECK_SECONDS` ago), else None."""
        digest = hashlib.sha256(presented.encode("utf-8", "surrogatepass")).hexdigest()
        now = time.monotonic()
        cached = self._checked.get(digest)
        if cached is not None and now - cached[1] < KEY_RECHECK_SECONDS:
            return cached[0]
        found = self.keys.verify(presented)
        if found is not None:  # unknown keys are not remembered: nobody can fill the cache with them
            if len(self._checked) >= MAX_CACHED_KEYS:
                self._checked.pop(next(iter(self._checked)))
            self._checked[digest] = (found, now)
        else:
            self._checked.pop(digest, None)
        return found

    # -- the lake -----------------------------------------------------------------------------------
    def current(self) -> View | None:
        """The view when it is current (a check of well under a millisecond), else None: then `view`
        builds a fresh one, which takes a while (call it from a thread, not the event loop)."""
        view = self._view
        return view if view is not None and view.version == self.version() else None

    def view(self) -> View:
        """The current view of the lake and the index (rebuilt after a run, a tenants load or an index)."""
        version = self.version()
        view = self._view
        if view is not None and view.version == version:
            return view
        with self._lock:
            if self._view is None or self._view.version != version:
                self._view = self._build(version)
            return self._view

    def version(self) -> Any:
        now = time.monotonic()
        every = REMOTE_VERSION_SECONDS if self._metadata is None else LOCAL_VERSION_SECONDS
        if self._version is None or now - self._version_read >= every:
            self._version = (self._lake_version(), self._index_version())
            self._version_read = now
        return self._version

    def _lake_version(self) -> Any:
        if self._metadata is not None:
            found = self._locations()
            if found is not None:
                return found
        self.wh.refresh()
        return tuple((name, self.wh.table(tdef).metadata_location) for name, tdef in sorted(TABLES.items()))

    def _locations(self) -> tuple[tuple[str, str], ...] | None:
        """Each table's current metadata file, from the catalog database through this thread's own
        read-only connection (kept open: a query is ~30 us, a new connection ten times that)."""
        assert self._metadata is not None
        con = getattr(self._local, "con", None)
        try:
            if con is None:
                con = self._local.con = sqlite3.connect(
                    f"{self._metadata.db.as_uri()}?mode=ro", uri=True, timeout=BUSY_SECONDS
                )
            rows = con.execute(
                "SELECT table_name, metadata_location FROM iceberg_tables "
                "WHERE catalog_name = ? AND table_namespace = ? ORDER BY table_name",
                (CATALOG_NAME, NAMESPACE),
            ).fetchall()
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise  # another process is committing: a 503 `busy`, not a slow fallback
            self._local.con = None
            found = self._metadata.locations()  # the slow path says what is wrong, or None
            return tuple(sorted(found.items())) if found is not None else None
        except sqlite3.Error:
            self._local.con = None
            found = self._metadata.locations()  # the slow path says what is wrong, or None
            return tuple(sorted(found.items())) if found is not None else None
        return tuple((str(name), str(location)) for name, location in rows if location)

    def _index_version(self) -> Any:
        """(name, size, mtime) of the files `costlake index` writes last: the chunks, their digest and
        source, and each embedder's index.json (not the embedding cache, which answering questions
        may add to)."""
        paths = [self.rag / name for name in (CHUNKS_FILE, CHUNKS_FILE + ".digest", SOURCE_FILE)]
        with contextlib.suppress(OSError):  # no index folder yet
            paths += sorted(Path(e.path) / "index.json" for e in os.scandir(self.rag / "index") if e.is_dir())
        found = []
        for path in paths:
            try:
                stat = path.stat()
            except OSError:
                continue
            found.append((str(path), stat.st_size, stat.st_mtime_ns))
        return tuple(found)

    def _build(self, version: Any) -> View:
        self.wh.refresh()
        owners = {
            r["account_id"]: r["tenant_id"] or UNASSIGNED_TENANT
            for r in self.wh.read_rows(DIM_ACCOUNT).select(["account_id", "tenant_id"]).to_pylist()
            if r["account_id"]
        }
        explainer = Explainer(self.wh)
        _ = explainer.source  # what `/health` compares the index with, read with the rest of the view
        if (self.rag / CHUNKS_FILE).exists():
            try:
                _ = explainer.retriever  # the index loads now, once, not inside some request
            except ConfigError as exc:  # damaged, or another embedder's: only the questions that need
                log.error("%s", first_line(exc))  # the index fail (503), and the path is in this log only
        return View(version, explainer, owners)

    def warm_up(self) -> None:
        """Load the view (the index) and start the embedding model, so the first request does not."""
        try:
            view = self.view()
        except Exception:  # noqa: BLE001 - a lake that cannot be read now is reported by /health
            log.warning("the lake could not be read at start-up; /health tells when it can", exc_info=True)
            return
        if (self.rag / CHUNKS_FILE).exists():
            view.explainer._warm_embedder().inner.embed("warm up")  # loaded, not cached

    def health(self) -> dict[str, Any]:
        """Whether the lake and the index can be read, and how fresh the index is; no tenant data."""
        lake: dict[str, Any] = {"reachable": True}
        try:
            view = self.view()
            lake["tables"] = len(view.version[0])
        except Exception as exc:  # noqa: BLE001 - health reports, it does not fail
            return {"lake": {"reachable": False, "error": type(exc).__name__}, "index": {"reachable": False}}
        index: dict[str, Any] = {"reachable": (self.rag / CHUNKS_FILE).exists()}
        if index["reachable"] and view.explainer.damaged:
            index = {"reachable": False, "error": "damaged: run `costlake index` again"}
        elif index["reachable"]:
            index["stale"] = view.explainer.stale
            index["built_at"] = dt.datetime.fromtimestamp(
                (self.rag / CHUNKS_FILE).stat().st_mtime, dt.UTC
            ).isoformat(timespec="seconds")
        return {"lake": lake, "index": index}
