"""One webhook POST with bounded retries, and what its answer means for the delivery.

2xx delivered; 410 gone (the alert is disabled); timeouts, connection errors, 429 and 5xx are
transient: retried here with exponential backoff (`alert_attempts`, `alert_backoff_seconds` doubling,
capped at `alert_backoff_max_seconds`), then left to the next send; any other 4xx, and a redirect
(never followed), is rejected for good. Error texts name the kind of failure only: a URL (a Slack
webhook URL is itself a secret) and the signature never appear in them.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests

from costlake import __version__
from costlake.alerts.signing import headers
from costlake.settings import Settings

USER_AGENT = f"costlake-alerts/{__version__}"
DELIVERED, FAILED, REJECTED, GONE = "delivered", "failed", "rejected", "gone"


@dataclass(frozen=True)
class Outcome:
    state: str  # delivered, failed (transient: sent again later), rejected (never again), gone (410)
    status: int | None  # the HTTP status, None when no answer came
    error: str | None  # what went wrong, without URL or secret
    tries: int


def classify(status: int) -> tuple[str, str | None]:
    """The state an HTTP answer puts a delivery in, and the error to log.

    >>> [classify(s)[0] for s in (200, 204, 410, 429, 500, 503, 400, 404, 301)]
    ['delivered', 'delivered', 'gone', 'failed', 'failed', 'failed', 'rejected', 'rejected', 'rejected']
    """
    if 200 <= status < 300:
        return DELIVERED, None
    if status == 410:
        return GONE, "410 Gone: the endpoint asked to be disabled"
    if status == 429 or status >= 500:
        return FAILED, f"HTTP {status}"
    if 300 <= status < 400:
        return REJECTED, f"HTTP {status}: redirects are not followed"
    return REJECTED, f"HTTP {status}"


MAX_ANSWER_BYTES = 64 * 1024  # of an answer's body read at most, then the connection is closed


def _post(url: str, body: bytes, sent_headers: dict[str, str], timeout: float, got: list[object]) -> None:
    """The POST itself (in a daemon thread): no netrc credentials and no redirect, at most 64 KiB of
    answer; the environment's proxy (HTTPS_PROXY, HTTP_PROXY, NO_PROXY) and CA bundle
    (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE) are used, as requests would."""
    session = requests.Session()
    session.trust_env = False  # ~/.netrc credentials never reach a receiver ...
    session.proxies = requests.utils.get_environ_proxies(url)  # ... but HTTPS_PROXY / NO_PROXY hold
    session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    got.append(session)
    try:
        answer = session.post(
            url, data=body, headers=sent_headers, timeout=timeout, allow_redirects=False, stream=True
        )
        got.append(answer)
        with contextlib.suppress(requests.RequestException, OSError, ValueError):
            answer.raw.read(MAX_ANSWER_BYTES)  # the status is what counts; a broken body changes nothing
        answer.close()
        got.append(answer.status_code)
    except requests.Timeout:
        got.append("timed out")
    except requests.ConnectionError:
        got.append("could not connect")
    except Exception as exc:  # noqa: BLE001 - e.g. the session closed under it after the deadline
        got.append(f"request failed ({type(exc).__name__})")
    finally:
        session.close()


def post_once(url: str, body: bytes, sent_headers: dict[str, str], timeout: float) -> tuple[int | None, str]:
    """The status of one POST (None and the kind of failure when no answer came), within `timeout`
    seconds in all: a receiver that trickles its answer is abandoned (the daemon thread dies with us)."""
    got: list[object] = []
    worker = threading.Thread(target=_post, args=(url, body, sent_headers, timeout, got), daemon=True)
    worker.start()
    worker.join(timeout)
    found = list(got)
    if worker.is_alive() or not found or isinstance(found[-1], requests.Session | requests.Response):
        for thing in reversed(found):
            with contextlib.suppress(Exception):
                thing.close()  # type: ignore[attr-defined]
        return None, "timed out"
    last = found[-1]
    return (last, "") if isinstance(last, int) else (None, str(last))


def deliver(
    url: str,
    secret: str,
    msg_id: str,
    body: bytes,
    settings: Settings,
    sleep: Callable[[float], None] = time.sleep,
) -> Outcome:
    """POST a body, signed afresh at each attempt (a new timestamp, the same id), retrying transient
    failures up to `alert_attempts` times."""
    delay = settings.alert_backoff_seconds
    tries = 0
    state, status = FAILED, None
    error: str | None = "not sent"  # alert_attempts >= 1: replaced below
    while tries < settings.alert_attempts:
        if tries:
            sleep(min(delay, settings.alert_backoff_max_seconds))
            delay *= 2
        tries += 1
        sent = {"content-type": "application/json", "user-agent": USER_AGENT}
        sent |= headers(secret, msg_id, int(time.time()), body)
        status, failure = post_once(url, body, sent, settings.alert_timeout_seconds)
        state, error = (FAILED, failure) if status is None else classify(status)
        if state != FAILED:
            break
    return Outcome(state, status, error, tries)
