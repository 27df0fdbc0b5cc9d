"""Structured logs: one JSON line per request (middleware) and per task (signals)."""

from __future__ import annotations

import json
import logging
import time
import uuid

from .redact import redact

request_log = logging.getLogger("llmops.request")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        payload.update(getattr(record, "fields", {}) or {})
        if record.exc_text or record.exc_info:
            payload["exc"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


class RedactFilter(logging.Filter):
    """Blanks URL-borne secrets (an invitation token is a one-time credential) out of a log
    record's message and traceback before any formatter sees them: Django's "Not Found:
    /invitations/<token>/" and "Internal Server Error: ..." lines, the dev server's request
    lines, anything else that logs a path. On the console handler (settings.LOGGING)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            record.fields = {name: redact(value) for name, value in fields.items()}
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class RequestLogMiddleware:
    """Gives each request an id and logs it once it is answered."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex
        started = time.perf_counter()
        response = self.get_response(request)
        org = getattr(request, "organization", None)
        user = getattr(request, "user", None)
        request_log.info(
            "request",
            extra={
                "fields": {
                    "request_id": request.request_id,
                    "organization": getattr(org, "slug", None),
                    "user": getattr(user, "username", None)
                    if getattr(user, "is_authenticated", False)
                    else None,
                    "method": request.method,
                    "path": redact(request.path),
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                }
            },
        )
        response["X-Request-Id"] = request.request_id
        return response


_task_logging_connected = False


def connect_task_logging() -> None:
    """Idempotent: connects the Celery signal handlers once per process."""
    global _task_logging_connected
    if _task_logging_connected:
        return
    _task_logging_connected = True
    from celery import signals

    task_log = logging.getLogger("llmops.task")
    starts: dict[str, float] = {}

    @signals.task_prerun.connect(weak=False)
    def _start(task_id=None, task=None, **_):
        starts[task_id] = time.perf_counter()

    @signals.task_postrun.connect(weak=False)
    def _end(task_id=None, task=None, state=None, **_):
        started = starts.pop(task_id, None)
        task_log.info(
            "task",
            extra={
                "fields": {
                    "task_id": task_id,
                    "task": getattr(task, "name", None),
                    "state": state,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2)
                    if started
                    else None,
                }
            },
        )
