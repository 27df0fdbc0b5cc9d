"""Secrets that travel in URLs (invitation links, `?token=`-style parameters), blanked out
before a URL is written to a log or a database row: gunicorn's access log
(`gunicorn.conf.py`), django-axes' records of log-ins (`llmops.tenancy.lockout`), the
request log and every other log line of the app, Django's "Not Found: <path>" included
(`llmops.common.logging`). Plain Python, no Django import: gunicorn loads it before Django
is set up."""

from __future__ import annotations

import re

REDACTED = "[redacted]"

# /invitations/<token>/ as a path, or inside a query value (`next=%2Finvitations%2F...`,
# possibly encoded twice: `%252F`).
_INVITATION = re.compile(r"(invitations(?:/|%2F|%252F))[A-Za-z0-9_\-]+", re.IGNORECASE)
# Query parameters whose value is a secret, should a client ever send one in a URL.
_SECRET_PARAM = re.compile(
    r"(?<![A-Za-z0-9_])((?:token|key|api_key|secret|password)=)[^&\s\"']+", re.IGNORECASE
)


def redact(text):
    """`text` with every URL-borne secret replaced by `[redacted]`; anything that is not a
    string is returned as is."""
    if not isinstance(text, str) or not text:
        return text
    text = _INVITATION.sub(rf"\g<1>{REDACTED}", text)
    return _SECRET_PARAM.sub(rf"\g<1>{REDACTED}", text)
