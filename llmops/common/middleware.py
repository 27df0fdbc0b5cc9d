"""Request guards shared by every API module."""

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
        if request.path.startswith("/api/"):
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
        return self.get_response(request)
