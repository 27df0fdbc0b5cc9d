"""gunicorn.conf.py: the access log never shows an invitation token."""

from __future__ import annotations

import runpy
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from gunicorn.config import Config

CONF = Path(__file__).resolve().parents[2] / "gunicorn.conf.py"
TOKEN = "q7Xv_2-Lm" * 4


def _access_line(tmp_path, fmt: str | None, *, path: str, query: str, referer: str) -> str:
    settings = runpy.run_path(str(CONF))
    cfg = Config()
    for name in ("logger_class", "accesslog"):
        cfg.set(name, settings[name])
    log_file = tmp_path / "access.log"
    cfg.set("accesslog", str(log_file))  # the file instead of stdout, to read it back
    if fmt:
        cfg.set("access_log_format", fmt)
    logger = cfg.logger_class(cfg)
    raw_uri = f"{path}?{query}" if query else path
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": raw_uri,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "198.51.100.7",
        "HTTP_REFERER": referer,
        "HTTP_USER_AGENT": "test",
    }
    request = SimpleNamespace(headers=[("REFERER", referer), ("USER-AGENT", "test")])
    response = SimpleNamespace(status="200 OK", sent=120, headers=[("Content-Type", "text/html")])
    logger.access(response, request, environ, timedelta(milliseconds=12))
    for handler in logger.access_log.handlers:
        handler.flush()
    text = log_file.read_text()
    for handler in list(logger.access_log.handlers):
        handler.close()
        logger.access_log.removeHandler(handler)
    return text


@pytest.mark.parametrize(
    "fmt",
    [
        None,  # gunicorn's default format (the README's command)
        '%(h)s %(s)s "%(r)s" %(U)s %(q)s "%(f)s" %({referer}i)s %({raw_uri}e)s %({query_string}e)s',
    ],
)
@pytest.mark.parametrize(
    ("path", "query", "referer"),
    [
        (f"/invitations/{TOKEN}/", "", "-"),
        ("/accounts/login/", f"next=%2Finvitations%2F{TOKEN}%2F", f"http://h/invitations/{TOKEN}/"),
        ("/accounts/login/", f"next=/invitations/{TOKEN}/", "-"),
    ],
)
def test_access_log_redacts_invitation_tokens(tmp_path, fmt, path, query, referer):
    line = _access_line(tmp_path, fmt, path=path, query=query, referer=referer)
    assert line.strip(), "a line was written"
    assert TOKEN not in line
    assert "[redacted]" in line
    assert "198.51.100.7" in line and "200" in line


def test_access_log_keeps_ordinary_requests_as_they_are(tmp_path):
    line = _access_line(
        tmp_path, None, path="/o/acme/prompts/", query="q=support&page=2", referer="-"
    )
    assert "GET /o/acme/prompts/?q=support&page=2 HTTP/1.1" in line
    assert "[redacted]" not in line
