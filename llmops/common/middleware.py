"""Request guards shared by every API module: the body-size limit, and JSON error bodies
for the errors Django answers itself (an unknown API URL, a crash)."""

from __future__ import annotations

from django.conf import settings
from django.http import JsonResponse


class ApiBodyLimitMiddleware:
    """Answers 413 in the API error format for an API request whose body is over the
    documented limit (`API_MAX_BODY_BYTES`, 5 MB), before any view or parser reads it.

    DRF's parsers read the request stream directly, so Django's own upload limit does not
    apply to them; and where Django's limit applies it answers 400, not 413."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.limit = getattr(settings, "API_MAX_BODY_BYTES", 5 * 1024 * 1024)

    def __call__(self, request):
        if not request.path.startswith("/api/"):
            return self.get_response(request)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > self.limit:
            return JsonResponse(
                {
                    "error": {
                        "code": "too_large",
                        "message": f"The request body is {length} bytes; the limit is "
                        f"{self.limit} bytes ({self.limit // (1024 * 1024)} MB).",
                        "details": {"limit_bytes": self.limit, "body_bytes": length},
                    }
                },
                status=413,
            )
        response = self.get_response(request)
        return _json_error(response)


_DJANGO_ERRORS = {
    400: ("invalid", "The request could not be read."),
    403: ("permission_denied", "Forbidden."),
    404: ("not_found", "No such API endpoint."),
    405: ("method_not_allowed", "Method not allowed."),
    500: ("server_error", "Something went wrong on our side; it has been logged."),
}


def _json_error(response):
    """Django's own error pages are HTML; an API client gets the API's error format."""
    if response.status_code < 400 or response.status_code not in _DJANGO_ERRORS:
        return response
    if not response.get("Content-Type", "").startswith("text/html"):
        return response
    if response.status_code == 500 and settings.DEBUG:
        return response  # keep Django's technical page while developing
    code, message = _DJANGO_ERRORS[response.status_code]
    replacement = JsonResponse(
        {"error": {"code": code, "message": message, "details": {}}},
        status=response.status_code,
    )
    for header in ("X-Request-Id", "Allow"):
        if header in response:
            replacement[header] = response[header]
    return replacement
