"""Webhook signatures: `X-Llmops-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`.
Receivers verify with `verify`; the timestamp lets them refuse old replays."""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Llmops-Signature"
TIMESTAMP_HEADER = "X-Llmops-Timestamp"
DELIVERY_HEADER = "X-Llmops-Delivery"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify(
    secret: str, timestamp: str, body: bytes, signature: str, *, tolerance: int | None = 300
) -> bool:
    """Whether `signature` is ours for this body and timestamp (constant-time compare);
    with a tolerance, a timestamp further than that many seconds from now fails too."""
    if tolerance is not None:
        try:
            if abs(time.time() - int(timestamp)) > tolerance:
                return False
        except ValueError:
            return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature or "")
