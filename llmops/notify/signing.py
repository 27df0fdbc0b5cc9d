"""Webhook signatures per the Standard Webhooks specification (standardwebhooks.com).

Every delivery carries `webhook-id` (the idempotency id), `webhook-timestamp` (Unix
seconds) and `webhook-signature`: `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`
keyed with the base64-decoded part of the secret after `whsec_`. While a rotated secret's
grace period runs, the header holds one signature per valid secret, space-separated, so
receivers verify with either the old or the new secret (`standardwebhooks.Webhook(secret)
.verify(body, headers)` or any other language's library).

Deprecated, for receivers written before: `X-Llmops-Signature: sha256=<hex HMAC-SHA256 of
"<timestamp>.<body>">` with the current secret's text as key (`verify`)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from datetime import UTC, datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"
ID_HEADER = "webhook-id"
TIMESTAMP = "webhook-timestamp"
SIGNATURE = "webhook-signature"
# Deprecated headers (kept so receivers written before keep working).
SIGNATURE_HEADER = "X-Llmops-Signature"
TIMESTAMP_HEADER = "X-Llmops-Timestamp"
DELIVERY_HEADER = "X-Llmops-Delivery"


def new_secret() -> str:
    """`whsec_` + standard base64 of 32 random bytes, as the specification recommends."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def is_standard_secret(secret: str) -> bool:
    """Whether the part after `whsec_` is standard base64 of 24 to 64 bytes (secrets made
    before Standard Webhooks signing were url-safe text: rotate them)."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return False
    return 24 <= len(key) <= 64


def secret_key(secret: str) -> bytes:
    """The HMAC key of a secret: its base64 payload decoded (the specification); a legacy
    url-safe secret is decoded as url-safe base64 so it still signs."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    if is_standard_secret(secret):
        return base64.b64decode(encoded)
    try:
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        return encoded.encode()


def signature(secrets_: list[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: one `v1,<sig>` per secret, space-separated."""
    when = datetime.fromtimestamp(timestamp, tz=UTC)
    text = body.decode()
    return " ".join(
        Webhook(secret_key(secret)).sign(msg_id=msg_id, timestamp=when, data=text)
        for secret in secrets_
    )


def headers(secrets_: list[str], msg_id: str, body: bytes, timestamp: int | None = None) -> dict:
    """All signature headers of one delivery; `secrets_[0]` is the current secret."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {
        ID_HEADER: msg_id,
        TIMESTAMP: str(timestamp),
        SIGNATURE: signature(secrets_, msg_id, timestamp, body),
        DELIVERY_HEADER: msg_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secrets_[0], str(timestamp), body),
    }


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Deprecated `X-Llmops-Signature` value."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify(
    secret: str, timestamp: str, body: bytes, signature: str, *, tolerance: int | None = 300
) -> bool:
    """Deprecated: whether `X-Llmops-Signature` is ours for this body and timestamp
    (constant-time compare); with a tolerance, a timestamp further than that many seconds
    from now fails too. New receivers use a Standard Webhooks library."""
    if tolerance is not None:
        try:
            if abs(time.time() - int(timestamp)) > tolerance:
                return False
        except ValueError:
            return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature or "")
