"""Log-in lock-outs: per user and address, per address alone (password spraying), and no
invitation token in axes' records."""

from __future__ import annotations

import re

from axes.models import AccessAttempt, AccessLog
from django.test import Client

from llmops.common.redact import redact

LOGIN = "/accounts/login/"


def _fail(client, username, addr="198.51.100.7", **extra):
    return client.post(
        LOGIN, {"username": username, "password": "wrong-password-1"}, REMOTE_ADDR=addr, **extra
    )


def _log_in(user, addr):
    user.set_password("right-password-1")
    user.save()
    return Client().post(
        LOGIN, {"username": user.username, "password": "right-password-1"}, REMOTE_ADDR=addr
    )


def test_spraying_many_usernames_from_one_address_is_locked_out(acme, globex, settings):
    settings.AXES_FAILURE_LIMIT = 5
    settings.AXES_IP_FAILURE_LIMIT = 8
    client = Client()
    # Each username is tried fewer times than the per-user limit...
    for n in range(settings.AXES_IP_FAILURE_LIMIT):
        _fail(client, f"someone-{n}")
    # ...yet the address is locked: even a right password from it is refused now,
    assert _log_in(acme.users["viewer"], "198.51.100.7").status_code in (403, 429)
    # while another address logs in to that account as usual.
    assert _log_in(acme.users["viewer"], "203.0.113.9").status_code == 302


def test_a_few_mistakes_do_not_lock_the_address(acme, globex, settings):
    settings.AXES_FAILURE_LIMIT = 5
    settings.AXES_IP_FAILURE_LIMIT = 8
    client = Client()
    for n in range(settings.AXES_IP_FAILURE_LIMIT - 1):
        _fail(client, f"someone-{n}")
    assert _log_in(acme.users["viewer"], "198.51.100.7").status_code == 302
    # A successful log-in clears that user's count only, not the address': one more
    # failure with yet another name locks the address.
    _fail(client, "someone-else")
    assert _log_in(acme.users["maint1"], "198.51.100.7").status_code in (403, 429)


def test_the_per_user_limit_still_applies(acme, globex, settings):
    settings.AXES_FAILURE_LIMIT = 3
    settings.AXES_IP_FAILURE_LIMIT = 30
    client = Client()
    for _ in range(3):
        _fail(client, acme.users["admin"].username)
    assert _log_in(acme.users["admin"], "198.51.100.7").status_code in (403, 429)
    assert _log_in(acme.users["viewer"], "198.51.100.7").status_code == 302


def test_no_invitation_token_lands_in_axes_records(acme, globex, login, client):
    page = login(acme.users["admin"]).post(
        "/o/acme/members/", {"op": "invite", "role": "viewer", "email": ""}
    )
    (path,) = re.findall(r"/invitations/[A-Za-z0-9_\-]+/", page.content.decode())
    token = path.split("/")[2]
    client.logout()
    # A failed log-in on the way to the invitation: the token is in `next` (GET and POST).
    response = client.post(
        f"{LOGIN}?next={path}",
        {"username": "acme-viewer", "password": "wrong-password-1", "next": path},
        HTTP_REFERER=f"http://testserver{path}",
    )
    assert response.status_code == 200
    # Signing up from the link logs the new account in on the invitation's own path.
    response = client.post(
        path,
        {"username": "newbie", "password1": "s3cret-pass-99", "password2": "s3cret-pass-99"},
    )
    assert response.status_code == 302
    attempts = list(AccessAttempt.objects.values())
    logs = list(AccessLog.objects.values())
    assert attempts and logs
    for row in attempts + logs:
        assert token not in repr(row)
    assert any("/invitations/[redacted]/" in row["path_info"] for row in logs)


def test_redact_blanks_tokens_in_paths_queries_and_encoded_forms():
    token = "Ab_9-xYz" * 5
    assert redact(f"GET /invitations/{token}/ HTTP/1.1") == "GET /invitations/[redacted]/ HTTP/1.1"
    assert token not in redact(f"/accounts/login/?next=%2Finvitations%2F{token}%2F")
    assert token not in redact(f"/x?next=%252Finvitations%252F{token}%252F")
    assert token not in redact(f"/api?token={token}&a=1") and "a=1" in redact(
        f"/api?token={token}&a=1"
    )
    assert redact("/o/acme/prompts/?sort_key=name") == "/o/acme/prompts/?sort_key=name"
    assert redact(None) is None and redact(7) == 7
