"""Webhook signatures: HMAC-SHA256 over the timestamp and the body, with the webhook's secret.

A receiver checks `X-Testfleet-Signature-256` with `verify` (or the same few lines in its own
language): the signed message is `f"{timestamp}.".encode() + body`, the timestamp is in
`X-Testfleet-Timestamp`; an old timestamp means a replay.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Testfleet-Signature-256"
TIMESTAMP_HEADER = "X-Testfleet-Timestamp"
EVENT_HEADER = "X-Testfleet-Event"
DELIVERY_HEADER = "X-Testfleet-Delivery"
TOLERANCE = 300.0


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The value of the signature header: `sha256=<hex>`."""
    message = f"{timestamp}.".encode() + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    now: float | None = None,
    tolerance: float = TOLERANCE,
) -> bool:
    """True if `signature` signs `body` at `timestamp` with `secret`, and the timestamp is
    within `tolerance` seconds of now."""
    try:
        moment = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - moment) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, moment, body), signature)
