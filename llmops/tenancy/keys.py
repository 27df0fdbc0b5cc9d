"""API key format: `llmops_` + public id (12) + secret (32) + checksum (6), base62 only,
so a secret scanner can spot a key and reject a mistyped one without a look-up."""

from __future__ import annotations

import hashlib
import secrets
import zlib

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
PREFIX = "llmops_"
PUBLIC_LEN, SECRET_LEN, CHECK_LEN = 12, 32, 6
KEY_LEN = len(PREFIX) + PUBLIC_LEN + SECRET_LEN + CHECK_LEN


def _random(n: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(n))


def _base62(number: int, width: int) -> str:
    out = []
    for _ in range(width):
        number, rem = divmod(number, 62)
        out.append(ALPHABET[rem])
    return "".join(reversed(out))


def checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode()), CHECK_LEN)


def generate() -> tuple[str, str]:
    """A new key and its public id."""
    public_id = _random(PUBLIC_LEN)
    body = public_id + _random(SECRET_LEN)
    return PREFIX + body + checksum(body), public_id


def well_formed(key: str) -> bool:
    if len(key) != KEY_LEN or not key.startswith(PREFIX):
        return False
    rest = key[len(PREFIX) :]
    if any(ch not in ALPHABET for ch in rest):
        return False
    body, check = rest[:-CHECK_LEN], rest[-CHECK_LEN:]
    return checksum(body) == check


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
