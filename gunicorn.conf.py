"""gunicorn settings for llmops (README.md, "Production"):

    gunicorn -c gunicorn.conf.py llmops.wsgi:application --bind 0.0.0.0:8000 --workers 4

The access log (on stdout by default) never shows a secret that travels in a URL: an
invitation link's token (`/invitations/<token>/`, also inside a log-in's `?next=` and in
the Referer of the page after it) or a `?token=`-style parameter is written as
`[redacted]`, in every field of the line (request line, path, query, referer, headers).
"""

from gunicorn.glogging import Logger

from llmops.common.redact import redact


class RedactingLogger(Logger):
    """gunicorn's logger with every access-log atom passed through `redact`."""

    def atoms(self, resp, req, environ, request_time):
        return {
            name: redact(value)
            for name, value in super().atoms(resp, req, environ, request_time).items()
        }


logger_class = RedactingLogger
accesslog = "-"
