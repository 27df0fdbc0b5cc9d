"""Settings and links every part of notify shares."""

from __future__ import annotations

import json
import urllib.parse

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.utils.http import url_has_allowed_host_and_scheme

from ..models import Channel

OUTBOUND = (Channel.EMAIL, Channel.WEBHOOK)


def _conf(name: str, default):
    return settings.LLMOPS.get(name, default)


def _private_allowed() -> bool:
    return bool(_conf("NOTIFY_ALLOW_PRIVATE_WEBHOOKS", False))


def max_attempts() -> int:
    return int(_conf("NOTIFY_MAX_ATTEMPTS", 8))


def _base_url() -> str:
    return (_conf("BASE_URL", "") or "http://127.0.0.1:8000").rstrip("/")


def safe_link(link) -> str:
    """A notification links only to a path on this site: an absolute link to this site
    (BASE_URL's host) becomes its path; another host, a scheme other than http(s) such as
    `javascript:`, or anything Django's `url_has_allowed_host_and_scheme` refuses is
    dropped ("")."""
    link = link.strip() if isinstance(link, str) else ""
    if not link or len(link) > 500 or any(ord(c) < 32 or ord(c) == 127 for c in link):
        return ""
    base = urllib.parse.urlsplit(_base_url())
    if not url_has_allowed_host_and_scheme(
        link, allowed_hosts={base.netloc}, require_https=base.scheme == "https"
    ):
        return ""
    parts = urllib.parse.urlsplit(link)
    if parts.scheme or parts.netloc:
        link = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, parts.fragment))
    if not link.startswith("/") or link.startswith("//") or "\\" in link:
        return ""
    return link


def absolute_link(link: str) -> str:
    link = safe_link(link)
    return f"{_base_url()}{link}" if link else ""


def _json(value) -> dict:
    return json.loads(json.dumps(value or {}, cls=DjangoJSONEncoder))
