"""Webhook signatures and retries: an HTTPS POST signed with HMAC-SHA256 over a timestamp and the body.

``X-Lifecycle-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(key, "<t>." + body)>`` and
``X-Lifecycle-Delivery: <delivery request id>`` (the same on every retry: receivers drop repeats by it).
Receivers check with ``verify``: the signature over the raw body, and a timestamp within five minutes so a
captured request cannot be replayed later. Several ``v1=`` entries may come (a key being rotated); one
match is enough.

The key is ``receiver_key(delivery secret)``, derived from the secret that also signs unsubscribe links,
so a webhook receiver (a third party) never holds what could forge those links. Pure.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime

SIGNATURE_HEADER = "X-Lifecycle-Signature"
DELIVERY_HEADER = "X-Lifecycle-Delivery"
#: a receiver refuses a signature whose timestamp is further than this from its own clock
TOLERANCE_SECONDS = 300
#: retries: 30 s, 1, 2, 4, 8 minutes, then every 15 minutes
FIRST_RETRY_SECONDS = 30
MAX_RETRY_SECONDS = 15 * 60
_KEY_LABEL = b"lifecycle webhook signing key v1"


def receiver_key(secret: bytes) -> bytes:
    """The webhook signing key receivers are given: HMAC-SHA256(delivery secret, a fixed label), as hex
    bytes (give receivers ``receiver_key(secret).decode()``)."""
    return hmac.new(secret, _KEY_LABEL, hashlib.sha256).hexdigest().encode("ascii")


def _signature(key: bytes, body: bytes, timestamp: int) -> str:
    return hmac.new(key, f"{timestamp}.".encode("ascii") + body, hashlib.sha256).hexdigest()


def signature_headers(key: bytes, body: bytes, timestamp: int, delivery_id: str) -> dict[str, str]:
    """The headers a webhook POST carries."""
    return {
        SIGNATURE_HEADER: f"t={timestamp},v1={_signature(key, body, timestamp)}",
        DELIVERY_HEADER: delivery_id,
    }


def verify(
    key: bytes,
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
    tolerance_seconds: int = TOLERANCE_SECONDS,
) -> bool:
    """Whether ``body`` (the raw bytes received) was signed with ``key`` within ``tolerance_seconds``
    of ``now``. Header names are compared without case."""
    header = next((v for k, v in headers.items() if k.lower() == SIGNATURE_HEADER.lower()), None)
    if not header:
        return False
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1" and value:
            signatures.append(value)
    if timestamp is None or abs(now.timestamp() - timestamp) > tolerance_seconds:
        return False
    expected = _signature(key, body, timestamp)
    return any(hmac.compare_digest(expected, s) for s in signatures)


def retry_delay(attempt: int) -> int:
    """Seconds before attempt ``attempt + 1`` after ``attempt`` failed (1-based): doubling from 30 s,
    at most 15 minutes."""
    if attempt < 1:
        return FIRST_RETRY_SECONDS
    return min(MAX_RETRY_SECONDS, FIRST_RETRY_SECONDS * 2 ** min(attempt - 1, 16))
