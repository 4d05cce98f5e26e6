"""Standard Webhooks signing: `whsec_` secrets, deterministic delivery ids, the three headers.

The signature is `v1,` + base64(HMAC-SHA256(key, "<id>.<timestamp>.<body>")), where the key is the
base64-decoded part of the secret after `whsec_`. Receivers verify it with any Standard Webhooks
library (`standardwebhooks.Webhook(secret).verify(body, headers)`) or the few lines in docs/alerts.md.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24  # 192 bits, as the reference implementations make them; base64 with no padding


def new_secret() -> str:
    """A new signing secret: `whsec_` + base64 of 24 random bytes.

    >>> s = new_secret(); s.startswith("whsec_"), len(base64.b64decode(s[6:]))
    (True, 24)
    """
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def delivery_id(alert_id: str, event: str, *identity: object) -> str:
    """The delivery id (`webhook-id`) of one event of one alert: the same for every sending of it, so a
    re-send after a crash carries the id the receiver may have seen, and receivers de-duplicate by it.

    >>> delivery_id("alr_1", "anomaly.detected", "111", "AmazonEC2", "2025-02-03", "spike")
    'msg_e4a17b8ff54829f7b78b9fe983'
    >>> delivery_id("alr_2", "anomaly.detected", "111", "AmazonEC2", "2025-02-03", "spike") != _
    True
    """
    text = "\x1f".join(str(part) for part in (alert_id, event, *identity))
    return "msg_" + hashlib.sha256(text.encode()).hexdigest()[:26]


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header of a body (the example is what standardwebhooks' `Webhook.sign` gives).

    >>> signature("whsec_" + base64.b64encode(b"k" * 24).decode(), "msg_1", 1700000000, b'{"a":1}')
    'v1,bYr7Rz93bX8WqNI5XVthzq7NE/LcYrDkos9dgSLYHOc='
    """
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The Standard Webhooks headers of one sending (a re-send gets a fresh timestamp, the same id)."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, msg_id, timestamp, body),
    }
