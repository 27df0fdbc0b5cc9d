"""Who is on the other end of a request (for audit events and logs)."""

from __future__ import annotations

from django.conf import settings


def client_ip(request) -> str:
    """The client's address. Behind N trusted reverse proxies (`TRUSTED_PROXY_COUNT`, 0 by
    default) it is the N-th address from the right of X-Forwarded-For: the proxies append,
    so anything further left was written by the client and cannot be trusted."""
    remote = request.META.get("REMOTE_ADDR", "") or ""
    proxies = int(getattr(settings, "LLMOPS", {}).get("TRUSTED_PROXY_COUNT", 0) or 0)
    if proxies <= 0:
        return remote
    forwarded = [
        part.strip()
        for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        if part.strip()
    ]
    if len(forwarded) < proxies:
        return remote
    return forwarded[-proxies][:45]
