"""One writer across hosts for an S3 warehouse: a lease object in the warehouse's own bucket.

The lease is `<warehouse>/.costlake/writer-lease.json`: its owner (command, pid, host, a random
token), when it was taken and when it expires. It is taken with S3 conditional writes only, so two
hosts can never both believe they hold it:

- create it with `PutObject(IfNoneMatch='*')` (fails with 412 if it exists);
- take over an *expired* one with `PutObject(IfMatch=<its etag>)` (fails if anyone renewed or took
  it meanwhile);
- renew it every `renew_s` seconds from a daemon thread with `PutObject(IfMatch=<our etag>)`;
- release it with `DeleteObject(IfMatch=<our etag>)`, which never deletes someone else's.

A failed precondition is 412 `PreconditionFailed` (AWS may also answer 409
`ConditionalRequestConflict` to concurrent conditional writes, and 404 `NoSuchKey` to `IfMatch` on
a lease deleted meanwhile): all mean "not ours", never an error.

If renewal finds the lease taken by someone else, or cannot renew it before it expires (S3
unreachable), the lease is *lost*: an error is logged at once, and `check()` raises `LeaseLost`,
which `Warehouse` calls before every commit and the writer lock calls on leaving, so the command
stops before its next commit and exits non-zero. Commits are atomic and every stage is safe to
interrupt, so stopping is the safe choice; carrying on could interleave with the new holder.

Expiry is judged on wall clocks (the holder's `expires_at` against the waiter's clock): hosts must
keep their clocks within a small fraction of the lease duration (NTP does).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import secrets
import socket
import threading
import time
from typing import Any
from urllib.parse import urlparse

from costlake.errors import LakeError

log = logging.getLogger(__name__)
LEASE_KEY = ".costlake/writer-lease.json"
LEASE_SCHEMES = frozenset({"s3", "s3a", "s3n"})
# Answers that mean "the lease is not as you expected": someone else holds, renewed, took or deleted it.
NOT_OURS = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey", "412", "409", "404"})


class LeaseLost(LakeError):
    """This writer's lease was taken by another writer, or expired unrenewed. Exit code 3."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _stamp(when: dt.datetime) -> str:
    return when.isoformat(timespec="milliseconds")


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def describe(info: dict[str, Any] | None) -> str:
    """A lease's owner as the lock messages say it: "run (pid 4711 on host, since …)"."""
    info = info or {}
    owner = info.get("owner")
    if not isinstance(owner, dict) or "command" not in owner:
        return "another costlake command"
    return f"{owner['command']} (pid {owner.get('pid')} on {owner.get('host')}, since {info.get('taken_at')})"


def expired(info: dict[str, Any] | None, now: dt.datetime | None = None) -> bool:
    """Whether a lease may be taken over: its `expires_at` has passed (or it is no lease at all)."""
    try:
        expires = dt.datetime.fromisoformat(str((info or {})["expires_at"]))
    except (KeyError, ValueError, TypeError):
        return True  # not a lease costlake wrote: nobody holds it
    return (now or _now()) >= expires


class S3Lease:
    """The writer lease of one S3 warehouse, for one hold by `command` (see the module docstring)."""

    def __init__(self, client: Any, warehouse: str, command: str, *, lease_s: float, renew_s: float) -> None:
        parsed = urlparse(warehouse)
        self.client = client
        self.bucket = parsed.netloc
        self.key = "/".join(p for p in (parsed.path.strip("/"), LEASE_KEY) if p)
        self.location = f"s3://{self.bucket}/{self.key}"
        self.lease_s, self.renew_s = lease_s, renew_s
        self.owner = {
            "command": command,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "token": secrets.token_hex(16),
        }
        self.taken_at = ""
        self.etag: str | None = None
        self.expires = 0.0  # wall-clock time our lease expires (time.time())
        self.lost: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- taking -------------------------------------------------------------------------------------
    def try_take(self) -> bool:
        """One attempt: create the lease, or take over an expired one. False: someone holds it."""
        try:
            return self._try_take()
        except Exception as exc:  # no such bucket, access denied, S3 unreachable: say where, in one line
            raise LakeError(f"{self.location}: cannot take the writer lease: {exc}") from exc

    def _try_take(self) -> bool:
        self.taken_at = _stamp(_now())
        if self._put(IfNoneMatch="*"):
            return self._taken()
        info, etag = self.read()
        if etag is not None and (info or {}).get("owner") == self.owner:
            self.etag = etag  # our own create, retried by botocore after its answer was lost
            return self._put(IfMatch=etag) and self._taken()
        if etag is None or not expired(info):
            return False
        if not self._put(IfMatch=etag):
            return False  # another waiter took it over first
        log.warning("took over the expired writer lease of %s at %s", describe(info), self.location)
        return self._taken()

    def _taken(self) -> bool:
        log.debug("writer lease taken at %s", self.location)
        self._thread = threading.Thread(target=self._renew_loop, name="costlake-lease", daemon=True)
        self._thread.start()
        return True

    def read(self) -> tuple[dict[str, Any] | None, str | None]:
        """The current lease and its ETag; (None, None) when there is none."""
        try:
            got = self.client.get_object(Bucket=self.bucket, Key=self.key)
        except Exception as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                return None, None
            raise
        try:
            info = json.loads(got["Body"].read() or b"{}")
        except ValueError:
            info = None
        return (info if isinstance(info, dict) else None), got["ETag"]

    def holder(self) -> str:
        """Who holds the lease now, as the lock messages say it."""
        try:
            return describe(self.read()[0])
        except Exception:  # only a message: the next attempt to take the lease says what is wrong
            return describe(None)

    def _put(self, **condition: str) -> bool:
        """Write our lease under `condition`; False if the condition failed (the lease is not ours)."""
        expires = time.time() + self.lease_s
        body = {
            "owner": self.owner,
            "taken_at": self.taken_at,
            "renewed_at": _stamp(_now()),
            "expires_at": _stamp(dt.datetime.fromtimestamp(expires, dt.UTC)),
        }
        try:
            put = self.client.put_object(
                Bucket=self.bucket,
                Key=self.key,
                Body=json.dumps(body).encode(),
                ContentType="application/json",
                **condition,
            )
        except Exception as exc:
            if _code(exc) in NOT_OURS:
                return False
            raise
        self.etag, self.expires = put["ETag"], expires
        return True

    # -- holding ------------------------------------------------------------------------------------
    def _renew_loop(self) -> None:
        while not self._stop.wait(self.renew_s):
            if not self._renew():
                return

    def _renew(self) -> bool:
        """Extend the lease; False (and the lease lost) when it is no longer ours."""
        assert self.etag is not None
        try:
            if self._put(IfMatch=self.etag):
                return True
            self._lose(f"it was taken by {self.holder()}")
            return False
        except Exception as exc:  # S3 unreachable, throttled, …: try again next time, while the lease lasts
            if time.time() < self.expires:
                log.warning("could not renew the writer lease at %s (will retry): %s", self.location, exc)
                return True
            self._lose(f"it could not be renewed before it expired ({exc})")
            return False

    def _lose(self, why: str) -> None:
        self.lost = f"{self.location}: lost the writer lease of {self.owner['command']}: {why}"
        log.error("%s; stopping before the next commit", self.lost)

    def check(self) -> None:
        """Raise `LeaseLost` unless the lease is still ours (called before every commit)."""
        if self.lost is None and time.time() >= self.expires:
            self._lose("it expired unrenewed")
        if self.lost is not None:
            raise LeaseLost(self.lost + "; this command stopped: run it again")

    def release(self) -> None:
        """Stop renewing and delete the lease if it is still ours (never someone else's)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.lost is None and self.etag is not None and time.time() < self.expires:
            try:
                self.client.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=self.etag)
            except Exception as exc:
                if _code(exc) not in NOT_OURS:
                    log.warning("could not release the writer lease at %s: %s", self.location, exc)
                    return
            log.debug("writer lease released at %s", self.location)
