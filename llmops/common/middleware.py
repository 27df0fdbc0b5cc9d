"""Request guards: the API's body-size limit, JSON error bodies for the errors Django
answers itself (an unknown API URL, a crash), and refused text in paths, query strings and
form posts."""

from __future__ import annotations

from django.conf import settings
from django.http import JsonResponse
from django.shortcuts import render

from .hygiene import printable, text_problem


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


_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _query_problem(params, kind: str) -> tuple[str, str] | None:
    for key, values in params.lists():
        problem = text_problem(key)
        if problem:
            return f"{kind} parameter name '{printable(key)}'", problem
        for value in values:
            problem = text_problem(value)
            if problem:
                return printable(key), problem
    return None


class TextHygieneMiddleware:
    """Refuses a NUL character or an unpaired surrogate in the path, a query parameter or an
    HTML form field with a 400 naming it (`llmops.common.hygiene` says why): the API answers
    in its error format, a page with a styled error page. JSON bodies are checked by the
    API's parser, per field."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        found = self.problem(request)
        if found is None:
            return self.get_response(request)
        field, problem = found
        message = f"{field} {problem}."
        if request.path_info.startswith("/api/"):
            return JsonResponse(
                {"error": {"code": "invalid", "message": message, "details": {"field": field}}},
                status=400,
            )
        return render(
            request, "common/bad_request.html", {"message": message, "field": field}, status=400
        )

    @staticmethod
    def problem(request) -> tuple[str, str] | None:
        problem = text_problem(request.path_info)
        if problem:
            return "path", problem
        found = _query_problem(request.GET, "query")
        if found:
            return found
        content_type = request.META.get("CONTENT_TYPE", "")
        if (
            request.method == "POST"
            and not request.path_info.startswith("/api/")
            and content_type.startswith(_FORM_TYPES)
        ):
            try:
                post = request.POST
            except Exception:  # noqa: BLE001 - an unreadable body is the view's (Django's) 400
                return None
            return _query_problem(post, "form")
        return None
