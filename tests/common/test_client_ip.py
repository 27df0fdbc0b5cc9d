"""Audit events record the client's address, also behind trusted reverse proxies."""

from __future__ import annotations

import pytest
from django.test import Client, RequestFactory

from llmops.audit.models import AuditEvent
from llmops.common.http import client_ip


@pytest.mark.parametrize(
    "proxies, forwarded, expected",
    [
        (0, "6.6.6.6", "10.0.0.1"),  # no proxy trusted: the header is the client's word
        (1, "203.0.113.7", "203.0.113.7"),
        (1, "6.6.6.6, 203.0.113.7", "203.0.113.7"),  # a forged left part is ignored
        (2, "6.6.6.6, 203.0.113.7, 10.0.0.9", "203.0.113.7"),
        (2, "203.0.113.7", "10.0.0.1"),  # fewer hops than proxies: fall back
        (1, "", "10.0.0.1"),
    ],
)
def test_client_ip(settings, proxies, forwarded, expected):
    settings.LLMOPS = {**settings.LLMOPS, "TRUSTED_PROXY_COUNT": proxies}
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected


def test_audit_events_carry_the_ip_of_html_and_api_requests(
    acme, globex, login, api_key, api, settings
):
    settings.LLMOPS = {**settings.LLMOPS, "TRUSTED_PROXY_COUNT": 1}
    client = login(acme.users["admin"])
    client.post(
        "/o/acme/teams/",
        {"name": "owners"},
        REMOTE_ADDR="10.0.0.1",
        HTTP_X_FORWARDED_FOR="198.51.100.4",
    )
    assert AuditEvent.objects.get(organization=acme.org, action="team.created").ip == "198.51.100.4"
    assert (
        api(api_key(acme, ["audit:read"])).get("/api/v1/me", REMOTE_ADDR="192.0.2.8").status_code
        == 200
    )


def test_login_lockouts_count_per_client_behind_a_trusted_proxy(acme, client, settings):
    """Two clients behind the same proxy: one's failed log-ins do not lock the other out."""
    from axes.models import AccessAttempt

    settings.LLMOPS = {**settings.LLMOPS, "TRUSTED_PROXY_COUNT": 1}
    user = acme.users["admin"]
    for n in range(settings.AXES_FAILURE_LIMIT):
        client.post(
            "/accounts/login/",
            {"username": user.username, "password": f"wrong-{n}"},
            REMOTE_ADDR="10.0.0.1",
            HTTP_X_FORWARDED_FOR="198.51.100.4",
        )
    (attempt,) = AccessAttempt.objects.filter(username=user.username)
    assert attempt.ip_address == "198.51.100.4"
    assert attempt.failures_since_start == settings.AXES_FAILURE_LIMIT
    user.set_password("right-password-1")
    user.save()

    def log_in(forwarded):
        return Client().post(
            "/accounts/login/",
            {"username": user.username, "password": "right-password-1"},
            REMOTE_ADDR="10.0.0.1",
            HTTP_X_FORWARDED_FOR=forwarded,
        )

    assert log_in("198.51.100.4").status_code in (403, 429)  # that client is locked out
    assert log_in("203.0.113.9").status_code == 302  # another client behind the proxy is not
