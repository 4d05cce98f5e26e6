"""The alerts and their delivery log: two SQLite tables beside the API keys (lake/api_keys.py).

Why not Iceberg: every delivery is written twice, `pending` (committed before the POST) and then its
outcome, a row-level update per HTTP request that Iceberg would turn into a snapshot each. The tables
sit in the warehouse's SQLite catalog database when it has one, else in `keys.db`
(`lake.api_keys.store_path`), never in a table PyIceberg reads.

`costlake_alert_deliveries` has one row per delivery id, its primary key: one id per (alert, event,
subject), so no event of an alert is ever logged, or sent, under two ids. States:
`pending` (logged, not known to be delivered: sent again by the next send), `failed` (timeouts,
connection errors, 429, 5xx: sent again), `delivered` (2xx), `rejected` (another 4xx or a redirect:
never sent again), `gone` (410: the alert was disabled), `baseline` (an anomaly that existed when the
alert was added: never sent), `moved` (an anomaly's event not sent: its account belongs to another
tenant now, whether that was known when it was logged or only when it was due to be sent).
"""

from __future__ import annotations

import datetime as dt
import secrets
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from costlake.errors import CostlakeError, InputError

ALERTS = "costlake_alerts"
DELIVERIES = "costlake_alert_deliveries"
BUSY_TIMEOUT_S = 5.0
RESEND = ("pending", "failed")  # the states a send delivers again
_ALERT_COLUMNS = (
    "alert_id, tenant_id, url, min_impact, min_pct, format, events, created_at, disabled, include_existing"
)
_SCHEMA = (
    f"""CREATE TABLE IF NOT EXISTS {ALERTS} (
        alert_id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, url TEXT NOT NULL, min_impact TEXT,
        min_pct TEXT, format TEXT NOT NULL, events TEXT NOT NULL, created_at TEXT NOT NULL,
        disabled TEXT, include_existing INTEGER NOT NULL DEFAULT 0)""",
    f"""CREATE TABLE IF NOT EXISTS {DELIVERIES} (
        delivery_id TEXT PRIMARY KEY, alert_id TEXT NOT NULL, event TEXT NOT NULL, subject TEXT NOT NULL,
        body BLOB, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, status INTEGER,
        error TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)""",
    f"CREATE INDEX IF NOT EXISTS {DELIVERIES}_alert ON {DELIVERIES} (alert_id, state, created_at)",
)


@dataclass(frozen=True)
class Alert:
    alert_id: str  # "alr_" + 8 hex
    tenant_id: str
    url: str  # as listings show it (scheme and host); the full URL is in the secrets file
    min_impact: Decimal | None  # on |impact_usd|
    min_pct: Decimal | None  # on |impact_pct|
    format: str  # json | slack
    events: frozenset[str]  # anomalies, operations
    created_at: dt.datetime
    disabled: str | None  # why the endpoint was disabled (a 410 answer), None while active
    include_existing: bool = False  # added with --include-existing: old anomalies are new to it too


@dataclass(frozen=True)
class Delivery:
    delivery_id: str
    alert_id: str
    event: str
    subject: str  # JSON of what the event is about (an anomaly's identity, a run, a day)
    body: bytes
    state: str
    attempts: int
    status: int | None
    error: str | None
    updated_at: str


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _alert(row: tuple[object, ...]) -> Alert:
    alert_id, tenant, url, impact, pct, fmt, events, created, disabled, existing = row
    return Alert(
        str(alert_id),
        str(tenant),
        str(url),
        None if impact is None else Decimal(str(impact)),
        None if pct is None else Decimal(str(pct)),
        str(fmt),
        frozenset(str(events).split(",")),
        dt.datetime.fromisoformat(str(created)),
        None if disabled is None else str(disabled),
        bool(existing),
    )


def _delivery(row: tuple[Any, ...]) -> Delivery:
    msg_id, alert_id, kind, subject, body, state, attempts, status, error, updated = row
    return Delivery(
        str(msg_id), str(alert_id), str(kind), str(subject), bytes(body or b""), str(state),
        int(attempts), None if status is None else int(status), None if error is None else str(error),
        str(updated),
    )  # fmt: skip


class StoreBusy(CostlakeError):
    """Another process held the alert store's lock for longer than the busy timeout."""

    exit_code = 1


@contextmanager
def _not_busy() -> Iterator[None]:
    """A locked database becomes one line, not an internal error."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise StoreBusy("the alert store is busy (another command holds it); try again") from None
        raise


def has_active_alerts(path: Path) -> bool:
    """Whether any alert is active, without creating the tables (or the file): what a run checks."""
    if not path.is_file():
        return False
    con = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S)
    try:
        with _not_busy():
            if not con.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (ALERTS,)).fetchone():
                return False
            found = con.execute(f"SELECT 1 FROM {ALERTS} WHERE disabled IS NULL LIMIT 1").fetchone()
            return found is not None
    finally:
        con.close()


class AlertStore:
    """The alerts of one warehouse and their delivery log. Autocommit; writes take the lock at once."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        with self._write() as con:
            for statement in _SCHEMA:
                con.execute(statement)

    def close(self) -> None:
        self.con.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with _not_busy():
            self.con.execute("BEGIN IMMEDIATE")
        try:
            yield self.con
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        with _not_busy():
            self.con.execute("COMMIT")

    def add(self, tenant: str, url: str, min_impact: Decimal | None, min_pct: Decimal | None,
            fmt: str, events: Iterable[str], include_existing: bool = False) -> Alert:  # fmt: skip
        alert = Alert(f"alr_{secrets.token_hex(4)}", tenant, url, min_impact, min_pct, fmt,
                      frozenset(events), dt.datetime.now(dt.UTC).replace(microsecond=0), None,
                      include_existing)  # fmt: skip
        with self._write() as con:
            con.execute(
                f"INSERT INTO {ALERTS} ({_ALERT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)",
                (alert.alert_id, tenant, url, _text(min_impact), _text(min_pct), fmt,
                 ",".join(sorted(alert.events)), alert.created_at.isoformat(), int(include_existing)),
            )  # fmt: skip
        return alert

    def alerts(self, active_only: bool = False) -> list[Alert]:
        sql = f"SELECT {_ALERT_COLUMNS} FROM {ALERTS}"
        sql += " WHERE disabled IS NULL" if active_only else ""
        return [_alert(r) for r in self.con.execute(sql + " ORDER BY created_at, alert_id").fetchall()]

    def get(self, wanted: str) -> Alert:
        """The alert with this id, or the one whose id starts with it."""
        wanted = wanted.strip()
        if not wanted:
            raise InputError("give an alert id (costlake alerts list shows them)")
        rows = self.con.execute(
            f"SELECT {_ALERT_COLUMNS} FROM {ALERTS} WHERE substr(alert_id, 1, ?) = ?", (len(wanted), wanted)
        ).fetchall()
        exact = [r for r in rows if r[0] == wanted]
        if not rows:
            raise InputError(f"no alert matches {wanted[:40]!r}")
        if len(rows) > 1 and not exact:
            raise InputError(f"{wanted!r} matches {len(rows)} alerts: give more of the id")
        return _alert((exact or rows)[0])

    def remove(self, alert_id: str) -> None:
        with self._write() as con:
            con.execute(f"DELETE FROM {DELIVERIES} WHERE alert_id = ?", (alert_id,))
            con.execute(f"DELETE FROM {ALERTS} WHERE alert_id = ?", (alert_id,))

    def disable(self, alert_id: str, why: str) -> None:
        with self._write() as con:
            con.execute(
                f"UPDATE {ALERTS} SET disabled = ? WHERE alert_id = ?", (f"{why} ({_now()})", alert_id)
            )

    def log(self, rows: Iterable[tuple[str, str, str, str, bytes, str]]) -> int:
        """Log new deliveries (delivery id, alert id, event, subject, body, state) in one transaction;
        an id already logged keeps its row. Returns how many were new."""
        now = _now()
        with self._write() as con:
            before = con.total_changes
            con.executemany(
                f"""INSERT OR IGNORE INTO {DELIVERIES} (delivery_id, alert_id, event, subject, body, state,
                    created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                [(*r, now, now) for r in rows],
            )
            return con.total_changes - before

    def logged(self, alert_id: str, event: str) -> dict[str, str]:
        """The state of each logged delivery of one event type of an alert, by delivery id."""
        rows = self.con.execute(
            f"SELECT delivery_id, state FROM {DELIVERIES} WHERE alert_id = ? AND event = ?", (alert_id, event)
        )
        return {str(i): str(s) for i, s in rows}

    def subjects(self, alert_id: str, event: str, states: Iterable[str]) -> list[str]:
        marks = ", ".join("?" * len(wanted := list(states)))
        rows = self.con.execute(
            f"SELECT subject FROM {DELIVERIES} WHERE alert_id = ? AND event = ? AND state IN ({marks})",
            (alert_id, event, *wanted),
        )
        return [str(r[0]) for r in rows]

    def due(self, alert_id: str, limit: int) -> list[Delivery]:
        """The deliveries to (re)send, oldest first."""
        rows = self.con.execute(
            f"""SELECT delivery_id, alert_id, event, subject, body, state, attempts, status, error, updated_at
                FROM {DELIVERIES} WHERE alert_id = ? AND state IN ('pending', 'failed')
                ORDER BY created_at, delivery_id LIMIT ?""",
            (alert_id, limit),
        ).fetchall()
        return [_delivery(r) for r in rows]

    def body(self, delivery_id: str) -> bytes:
        row = self.con.execute(
            f"SELECT body FROM {DELIVERIES} WHERE delivery_id = ?", (delivery_id,)
        ).fetchone()
        return bytes(row[0])

    def count_due(self, alert_id: str) -> int:
        row = self.con.execute(
            f"SELECT count(*) FROM {DELIVERIES} WHERE alert_id = ? AND state IN ('pending', 'failed')",
            (alert_id,),
        ).fetchone()
        return int(row[0])

    def outcome(
        self, delivery_id: str, state: str, status: int | None, error: str | None, tries: int
    ) -> None:
        with self._write() as con:
            con.execute(
                f"""UPDATE {DELIVERIES} SET state = ?, status = ?, error = ?, attempts = attempts + ?,
                    updated_at = ? WHERE delivery_id = ?""",
                (state, status, error, tries, _now(), delivery_id),
            )

    def last(self, alert_id: str) -> Delivery | None:
        """The delivery of the alert tried last (what `alerts list` shows)."""
        row = self.con.execute(
            f"""SELECT delivery_id, alert_id, event, subject, body, state, attempts, status, error, updated_at
                FROM {DELIVERIES} WHERE alert_id = ? AND attempts > 0
                ORDER BY updated_at DESC, rowid DESC LIMIT 1""",
            (alert_id,),
        ).fetchone()
        return None if row is None else _delivery(row)


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")
