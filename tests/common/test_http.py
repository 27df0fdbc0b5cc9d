"""Cross-cutting HTTP behaviour: request logs, production settings, health check, brute-force
lockout, the API error format (400/401/403/404/409/413), session-authenticated API."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings
from rest_framework.test import APIClient

from llmops.common.api import exception_handler
from llmops.common.errors import (
    InvalidInput,
    InvalidTransition,
    NotFound,
    NotPermitted,
    PolicyViolation,
    TooLarge,
)
from llmops.common.logging import JsonFormatter
from llmops.tenancy.models import Membership
from tests.factories import PASSWORD

ROOT = Path(__file__).resolve().parents[2]
ME = "/api/v1/me"


def error_of(response):
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    return body["error"]


# --- logs ------------------------------------------------------------------------------


def _request_lines(caplog):
    formatter = JsonFormatter()
    return [json.loads(formatter.format(r)) for r in caplog.records if r.name == "llmops.request"]


def test_one_json_line_per_request_with_its_context(acme, globex, login, caplog, api_key, api):
    caplog.set_level(logging.INFO, logger="llmops.request")
    response = login(acme.users["maint1"]).get("/o/acme/members/", HTTP_X_REQUEST_ID="req-123")
    assert response["X-Request-Id"] == "req-123"
    (line,) = _request_lines(caplog)
    assert line["request_id"] == "req-123"
    assert line["organization"] == "acme" and line["user"] == "acme-maint1"
    assert line["path"] == "/o/acme/members/" and line["method"] == "GET"
    assert line["status"] == 200 and isinstance(line["duration_ms"], float)
    assert line["level"] == "INFO" and line["logger"] == "llmops.request"
    caplog.clear()
    raw = api_key(globex, ["audit:read"])
    api(raw).get("/api/v1/audit-events")
    (line,) = _request_lines(caplog)
    assert line["organization"] == "globex" and line["user"].startswith("key:llmops_")
    assert len(line["request_id"]) == 32 and line["status"] == 200
    caplog.clear()
    APIClient().get(ME)
    (line,) = _request_lines(caplog)
    assert line["status"] == 401 and line["user"] is None and line["organization"] is None


def test_json_formatter_is_one_line_even_with_an_exception():
    formatter = JsonFormatter()
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    text = formatter.format(record)
    assert "\n" not in text
    assert json.loads(text)["exc"].startswith("Traceback")


def test_production_settings_log_json():
    # Under tests DEBUG is off, so the console handler is the JSON one, as in production.
    assert settings.LOG_JSON is True
    assert settings.LOGGING["handlers"]["console"]["formatter"] == "json"


# --- production settings ------------------------------------------------------------------


def _production_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in {"LLMOPS_TESTING", "DATABASE_URL"}}
    env.update(
        DEBUG="0",
        SECRET_KEY="pR0d-" + "k3J9xQ2mZ8vR4tL7pW1nB6yH5cF0dS3aG8eU2iO9rT4wE7qY1uI6oP5lK2jH8",
        ALLOWED_HOSTS="llmops.example.com",
        DJANGO_SETTINGS_MODULE="llmops.settings",
        **extra,
    )
    return env


def test_check_deploy_prints_no_warning():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=_production_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output, output
    assert "WARNINGS" not in output


def test_production_refuses_to_start_without_a_secret_key():
    env = _production_env()
    env["SECRET_KEY"] = ""
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "SECRET_KEY must be set" in result.stderr


def test_healthz_is_exempt_from_the_ssl_redirect(db, client):
    with override_settings(SECURE_SSL_REDIRECT=True, SECURE_REDIRECT_EXEMPT=[r"^healthz$"]):
        assert settings.SECURE_REDIRECT_EXEMPT == [r"^healthz$"]
        response = client.get("/healthz")
        assert response.status_code == 200 and response.json() == {"status": "ok"}
        response = client.get("/accounts/login/")
        assert response.status_code == 301
        assert response["Location"].startswith("https://")


def test_settings_exempt_healthz_when_debug_is_off():
    assert not settings.DEBUG
    assert r"^healthz$" in settings.SECURE_REDIRECT_EXEMPT
    assert settings.SECURE_HSTS_SECONDS >= 31536000


# --- brute force --------------------------------------------------------------------------


def test_login_locks_after_the_failure_limit(acme, globex, client):
    limit = settings.AXES_FAILURE_LIMIT
    for _ in range(limit - 1):
        response = client.post("/accounts/login/", {"username": "acme-admin", "password": "wrong"})
        assert response.status_code == 200
    response = client.post("/accounts/login/", {"username": "acme-admin", "password": "wrong"})
    assert response.status_code in (403, 429)
    assert "Too many failed log-in attempts" in response.content.decode()
    # Now even the right password is refused for this username and address...
    response = client.post("/accounts/login/", {"username": "acme-admin", "password": PASSWORD})
    assert response.status_code in (403, 429)
    assert "_auth_user_id" not in client.session
    # ...while another user from the same address may still log in.
    response = client.post("/accounts/login/", {"username": "acme-viewer", "password": PASSWORD})
    assert response.status_code == 302


# --- API errors ----------------------------------------------------------------------------


def test_400_401_403_404_over_http(acme, globex, api_key, api, client):
    reader = api(api_key(acme, ["audit:read"]))
    error = error_of(reader.get("/api/v1/audit-events", {"since": "nope"}))
    assert error["code"] == "invalid" and "since" in error["details"]["fields"]
    response = APIClient().get(ME)
    assert response.status_code == 401
    assert error_of(response)["code"] == "not_authenticated"
    response = api("llmops_garbage").get(ME)
    assert response.status_code == 401 and error_of(response)["code"] == "authentication_failed"
    response = api(api_key(acme, ["ingest"])).get("/api/v1/audit-events")
    assert response.status_code == 403
    error = error_of(response)
    assert error["code"] == "permission_denied" and "audit.view" in error["message"]
    session = APIClient()
    session.force_login(acme.users["admin"], backend="django.contrib.auth.backends.ModelBackend")
    response = session.get(ME, HTTP_X_ORGANIZATION="globex")
    assert response.status_code == 404 and error_of(response)["code"] == "not_found"


@pytest.mark.parametrize(
    "exc, status, code",
    [
        (InvalidInput("Bad name.", field="name"), 400, "invalid"),
        (NotPermitted("No."), 403, "not_permitted"),
        (NotFound("Gone."), 404, "not_found"),
        (PolicyViolation("Four eyes: you proposed it.", code="four_eyes"), 409, "four_eyes"),
        (InvalidTransition("Already approved."), 409, "invalid_transition"),
        (TooLarge("Over 1,000 items."), 413, "too_large"),
    ],
)
def test_service_errors_translate_once(exc, status, code):
    response = exception_handler(exc, {})
    assert response.status_code == status
    assert response.data["error"]["code"] == code
    assert response.data["error"]["message"] == exc.message
    if isinstance(exc, InvalidInput):
        assert response.data["error"]["details"] == {"fields": {"name": ["Bad name."]}}


def test_body_over_5_mb_is_413_not_400(acme, globex, api_key, api):
    client = api(api_key(acme, ["ingest"]))
    limit = settings.API_MAX_BODY_BYTES
    assert limit == 5 * 1024 * 1024
    for size in (limit + 1, limit + 300 * 1024, int(5.5 * 1024 * 1024)):
        body = json.dumps({"pad": "x" * (size - 11)})
        assert len(body) == size
        response = client.post(ME, body, content_type="application/json")
        assert response.status_code == 413, size
        error = error_of(response)
        assert error["code"] == "too_large" and error["details"]["limit_bytes"] == limit


def test_body_under_5_mb_is_not_refused_for_its_size(acme, globex, api_key, api):
    client = api(api_key(acme, ["ingest"]))
    body = json.dumps({"pad": "x" * (4 * 1024 * 1024)})
    response = client.post(ME, body, content_type="application/json")
    # /me accepts no POST: a 403 or 405, never a size refusal.
    assert response.status_code not in (400, 413)


def test_unauthenticated_big_body_is_413_before_anything_reads_it(db):
    body = b"{" + b" " * (6 * 1024 * 1024) + b"}"
    response = APIClient().generic("POST", ME, body, content_type="application/json")
    assert response.status_code == 413


# --- session-authenticated API ------------------------------------------------------------


def _session(user):
    client = APIClient()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


def test_session_user_in_one_org_needs_no_header(acme, globex):
    body = _session(acme.users["viewer"]).get(ME).json()
    assert body["organization"] == "acme" and body["role"] == "viewer" and body["key"] is None


def test_session_user_in_two_orgs_names_the_org(acme, globex):
    Membership.objects.create(user=acme.users["maint1"], organization=globex.org, role="viewer")
    client = _session(acme.users["maint1"])
    response = client.get(ME)
    assert response.status_code == 400
    error = error_of(response)
    assert "X-Organization" in error["details"]["fields"]
    assert error["message"].startswith("X-Organization")
    assert client.get(ME, HTTP_X_ORGANIZATION="globex").json() == {
        "organization": "globex",
        "user": "acme-maint1",
        "role": "viewer",
        "key": None,
    }
    assert client.get(ME, HTTP_X_ORGANIZATION="acme").json()["role"] == "maintainer"
    # The header's organization decides the role: a viewer in globex may read its audit log,
    # a maintainer in acme too; neither reaches the other's events.
    response = client.get("/api/v1/audit-events", HTTP_X_ORGANIZATION="globex")
    assert response.status_code == 200
    assert all("acme" not in e["target_label"] for e in response.json()["results"])


def test_session_api_writes_need_csrf(acme, globex):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(acme.users["admin"], backend="django.contrib.auth.backends.ModelBackend")
    response = client.post(ME, {}, format="json")
    assert response.status_code == 403
    assert "CSRF" in error_of(response)["message"]


def test_unknown_api_url_and_crash_answer_in_the_error_format(acme, globex, api_key, api):
    client = api(api_key(acme, ["ingest"]))
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404 and error_of(response)["code"] == "not_found"
    # Pages outside the API keep Django's HTML.
    assert "text/html" in APIClient().get("/no-such-page/")["Content-Type"]


def test_api_crash_is_a_json_500(db, settings):
    from django.http import HttpResponseServerError
    from django.test import RequestFactory

    from llmops.common.middleware import ApiBodyLimitMiddleware

    settings.DEBUG = False
    middleware = ApiBodyLimitMiddleware(lambda request: HttpResponseServerError("<h1>boom</h1>"))
    response = middleware(RequestFactory().get("/api/v1/me"))
    assert response.status_code == 500
    assert json.loads(response.content)["error"]["code"] == "server_error"


def test_one_json_line_per_task(caplog):
    from celery import signals

    from llmops.common.logging import connect_task_logging

    connect_task_logging()
    connect_task_logging()  # idempotent: still one line per task

    class FakeTask:
        name = "llmops.notify.tasks.deliver"

    caplog.set_level(logging.INFO, logger="llmops.task")
    signals.task_prerun.send(sender=FakeTask, task_id="t-1", task=FakeTask)
    signals.task_postrun.send(sender=FakeTask, task_id="t-1", task=FakeTask, state="SUCCESS")
    lines = [
        json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "llmops.task"
    ]
    assert len(lines) == 1
    (line,) = lines
    assert line["task_id"] == "t-1" and line["task"] == "llmops.notify.tasks.deliver"
    assert line["state"] == "SUCCESS" and isinstance(line["duration_ms"], float)


def test_invitation_tokens_are_not_logged(acme, globex, caplog, client):
    from llmops.tenancy.services import invitation_create

    _, token = invitation_create(actor=acme.actor(), role="viewer")
    caplog.set_level(logging.INFO, logger="llmops.request")
    assert client.get(f"/invitations/{token}/").status_code == 200
    (line,) = _request_lines(caplog)
    assert token not in json.dumps(line)
    assert line["path"] == "/invitations/[redacted]/"
