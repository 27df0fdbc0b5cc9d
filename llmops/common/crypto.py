"""Secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256) under a rotatable list of keys.

Keys come from the environment, `LLMOPS_SECRET_KEYS`: a comma-separated list of Fernet
keys (`python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`).
The first key encrypts, every key decrypts (`MultiFernet`), so rotating is: put a new key
first, keep the old ones, run `manage.py rotate_secrets` (re-encrypts every stored secret
with the first key), then drop the old keys. Unset, a key is derived from `SECRET_KEY`
(HKDF-SHA256): fine for development, but then changing `SECRET_KEY` makes the stored
secrets unreadable, so production sets `LLMOPS_SECRET_KEYS` (see README.md).

Use `EncryptedTextField` on a model (webhook signing secrets; later OIDC client secrets,
judge API keys), or `encrypt()`/`decrypt()` directly. Stored values read
`fernet:<token>`; encryption is randomized, so such a column cannot be filtered on."""

from __future__ import annotations

import base64
import functools
import logging

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

logger = logging.getLogger(__name__)

PREFIX = "fernet:"
ENV_NAME = "LLMOPS_SECRET_KEYS"


class SecretDecryptionError(Exception):
    """A stored secret none of the configured keys opens (a key was dropped too early,
    or SECRET_KEY changed while no LLMOPS_SECRET_KEYS were set)."""


def configured_keys() -> tuple[str, ...]:
    return tuple(k for k in (settings.LLMOPS.get("SECRET_KEYS") or ()) if k)


def uses_derived_key() -> bool:
    return not configured_keys()


def derived_key(secret_key: str) -> bytes:
    """A Fernet key derived from Django's SECRET_KEY (used when no keys are configured)."""
    raw = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"llmops-secrets-at-rest", info=b"fernet"
    ).derive(secret_key.encode())
    return base64.urlsafe_b64encode(raw)


@functools.lru_cache(maxsize=8)
def _multifernet(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    if not keys:
        logger.info(
            "%s is unset: secrets at rest are encrypted with a key derived from SECRET_KEY",
            ENV_NAME,
        )
        return MultiFernet([Fernet(derived_key(secret_key))])
    fernets = []
    for position, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key.encode()))
        except (ValueError, TypeError):
            raise ImproperlyConfigured(
                f"{ENV_NAME}: key {position} is not a Fernet key (32 url-safe base64 bytes)."
            )
    return MultiFernet(fernets)


def _fernet() -> MultiFernet:
    return _multifernet(configured_keys(), settings.SECRET_KEY)


def is_encrypted(value: str | None) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def encrypt(plaintext: str) -> str:
    return PREFIX + _fernet().encrypt(plaintext.encode()).decode()


def _token(value: str) -> bytes:
    if not is_encrypted(value):
        raise SecretDecryptionError("not an encrypted value")
    return value[len(PREFIX) :].encode()


def decrypt(value: str) -> str:
    try:
        return _fernet().decrypt(_token(value)).decode()
    except InvalidToken:
        raise SecretDecryptionError(
            f"no key in {ENV_NAME} (or the SECRET_KEY-derived key) decrypts this secret"
        )


def rotate(value: str) -> str:
    """The same secret encrypted with the first key (a plaintext value is encrypted)."""
    if not is_encrypted(value):
        return encrypt(value)
    try:
        return PREFIX + _fernet().rotate(_token(value)).decode()
    except InvalidToken:
        raise SecretDecryptionError(
            f"no key in {ENV_NAME} (or the SECRET_KEY-derived key) decrypts this secret"
        )


class EncryptedTextField(models.TextField):
    """Text stored encrypted (`fernet:<token>`), plaintext in Python. A value written
    before the column was encrypted reads as is until saved again (the data migration
    that introduces the field saves every row)."""

    description = "Text encrypted at rest"

    def from_db_value(self, value, expression, connection):
        if value is None or value == "" or not is_encrypted(value):
            return value
        return decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(value)


def check_secret_keys(app_configs=None, **kwargs):
    """System check: every configured key is a Fernet key (a typo fails at start-up, not at
    the first secret read)."""
    from django.core import checks

    try:
        _multifernet(configured_keys(), settings.SECRET_KEY)
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id="llmops.E101")]
    return []


def encrypted_fields():
    """(model, field name) for every EncryptedTextField of the installed apps."""
    from django.apps import apps

    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, EncryptedTextField):
                yield model, field.name
