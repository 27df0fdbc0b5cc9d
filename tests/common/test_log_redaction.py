"""Invitation tokens (one-time credentials) never reach a log line: Django's own error log
("Not Found: <path>"), the request log (also under a script prefix), tracebacks. One shared
function, `llmops.common.redact.redact`, is used there, by gunicorn's access log and by
django-axes' records."""

from __future__ import annotations

import io
import json
import logging
import runpy
import sys
from pathlib import Path

import pytest

from llmops.common import redact as redact_module
from llmops.common.logging import JsonFormatter, RedactFilter

TOKEN = "Zq8pXw3Lk0secretTokenValue42"


@pytest.fixture
def console():
    """What the configured console handler (settings.LOGGING) writes, as text."""
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler)]
    configured = [h for h in handlers if any(isinstance(f, RedactFilter) for f in h.filters)]
    assert configured, "the root's console handler has no RedactFilter"
    buf = io.StringIO()
    old = [h.setStream(buf) for h in configured]
    try:
        yield buf
    finally:
        for handler, stream in zip(configured, old, strict=True):
            handler.setStream(stream)


def test_djangos_not_found_line_names_no_invitation_token(db, client, console):
    assert client.get(f"/invitations/{TOKEN}/").status_code == 404
    out = console.getvalue()
    assert "Not Found" in out and "/invitations/[redacted]/" in out
    assert TOKEN not in out


def test_request_log_redacts_under_a_script_prefix_too(db, client, caplog):
    caplog.set_level(logging.INFO, logger="llmops.request")
    client.get(f"/invitations/{TOKEN}/", SCRIPT_NAME="/llmops")
    lines = [
        json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "llmops.request"
    ]
    assert lines and lines[-1]["path"] == "/llmops/invitations/[redacted]/"
    assert TOKEN not in json.dumps(lines)


def _record(msg, args=(), exc_info=None, fields=None):
    record = logging.LogRecord("django.request", logging.ERROR, __file__, 1, msg, args, exc_info)
    if fields is not None:
        record.fields = fields
    return record


def test_filter_redacts_messages_arguments_fields_and_tracebacks():
    try:
        raise RuntimeError(f"boom at /invitations/{TOKEN}/")
    except RuntimeError:
        exc_info = sys.exc_info()
    record = _record(
        "Internal Server Error: %s",
        (f"/invitations/{TOKEN}/",),
        exc_info,
        fields={"referer": f"/accounts/login/?next=%2Finvitations%2F{TOKEN}%2F", "n": 3},
    )
    assert RedactFilter().filter(record) is True
    plain = logging.Formatter("%(message)s").format(record)
    as_json = JsonFormatter().format(record)
    for out in (plain, as_json):
        assert TOKEN not in out and "[redacted]" in out
    assert "Internal Server Error: /invitations/[redacted]/" in plain
    assert "RuntimeError: boom at /invitations/[redacted]/" in plain
    assert json.loads(as_json)["n"] == 3
    # A line without a secret is left exactly as it was, arguments included.
    quiet = _record("GET %s %d", ("/o/acme/prompts/?sort_key=name", 200))
    RedactFilter().filter(quiet)
    assert quiet.args == ("/o/acme/prompts/?sort_key=name", 200)
    assert quiet.getMessage() == "GET /o/acme/prompts/?sort_key=name 200"


def test_one_redaction_function_everywhere():
    from llmops.common import logging as log_module
    from llmops.tenancy import lockout

    gunicorn_conf = runpy.run_path(str(Path(__file__).resolve().parents[2] / "gunicorn.conf.py"))
    assert lockout.redact is redact_module.redact
    assert log_module.redact is redact_module.redact
    assert gunicorn_conf["redact"] is redact_module.redact
