"""DRF plumbing shared by every API module: one error format, pagination."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .errors import GovernanceError, InvalidInput


def error_response(
    status_code: int, code: str, message: str, details: dict | None = None
) -> Response:
    return Response(
        {"error": {"code": code, "message": message, "details": details or {}}}, status=status_code
    )


def json_object(request) -> dict:
    """The one body reader of API views that take a JSON object: `request.data` (the API's
    JSON parser has already refused NUL characters, unpaired surrogates and non-finite
    numbers; a body nested too deeply becomes a 400 in `exception_handler`), which must be
    an object, else a 400."""
    data = request.data
    if not isinstance(data, dict):
        raise InvalidInput("The request body must be a JSON object.", field="non_field_errors")
    return data


def _first_message(detail) -> str:
    if isinstance(detail, dict):
        for key, value in detail.items():
            inner = _first_message(value)
            return f"{key}: {inner}" if key != "non_field_errors" else inner
        return "Invalid input."
    if isinstance(detail, list):
        return _first_message(detail[0]) if detail else "Invalid input."
    return str(detail)


def exception_handler(exc, context):
    if isinstance(exc, GovernanceError):
        return error_response(exc.status, exc.code, exc.message, exc.details)
    if isinstance(exc, RecursionError):
        # DRF's JSON parser lets a deeply nested body escape as a RecursionError.
        return error_response(400, "invalid", "The JSON body is nested too deeply.")
    if isinstance(exc, RequestDataTooBig):
        limit = settings.API_MAX_BODY_BYTES
        return error_response(
            413, "too_large", f"The request body is over the limit of {limit} bytes."
        )
    if isinstance(exc, DjangoValidationError):
        fields = (
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
        return error_response(400, "invalid", _first_message(fields), {"fields": fields})
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        return error_response(400, "invalid", _first_message(detail), {"fields": detail})
    code = getattr(exc, "default_code", "error")
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        code = (
            "not_authenticated"
            if isinstance(exc, exceptions.NotAuthenticated)
            else "authentication_failed"
        )
        response.status_code = status.HTTP_401_UNAUTHORIZED
    message = _first_message(exc.detail)
    new = error_response(response.status_code, code, message)
    for header, value in response.items():
        if header.lower() in {"www-authenticate", "retry-after"}:
            new[header] = value
    return new


class CreatedCursorPagination(CursorPagination):
    """`{"results": [...], "next": ...}` ordered newest first."""

    page_size = 50
    max_page_size = 500
    page_size_query_param = "limit"
    ordering = "-id"

    def get_paginated_response(self, data):
        return Response({"results": data, "next": self.get_next_link()})

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "properties": {"results": schema, "next": {"type": "string", "nullable": True}},
        }


def paginated(item, name: str | None = None):
    """The documented answer of a list that pages like `CreatedCursorPagination`:
    `{"results": [item, ...], "next": url | null}`. `item` is a serializer (class or
    instance, e.g. an `inline_serializer`); the page gets its own component name."""
    item_class = item if isinstance(item, type) else type(item)
    item_name = item_class.__name__.removesuffix("Serializer")
    return inline_serializer(
        name or f"Paginated{item_name}List",
        {
            "results": item_class(many=True),
            "next": serializers.CharField(
                allow_null=True, help_text="The next page's URL; null on the last page."
            ),
        },
    )


# Query parameters of a cursor-paginated list (documented where a view pages by hand).
PAGE_PARAMETERS = [
    OpenApiParameter("cursor", str, description="The cursor of the page (from `next`)."),
    OpenApiParameter("limit", int, description="Items per page (at most 500)."),
]


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine-readable code, e.g. `invalid`.")
    message = serializers.CharField(help_text="A sentence for a person.")
    details = serializers.DictField(
        help_text="More about the error; `fields` maps each invalid field to its messages."
    )


class ErrorSerializer(serializers.Serializer):
    """The one error body of the API: `{"error": {"code", "message", "details"}}`."""

    error = ErrorBodySerializer()


ERROR_RESPONSES = {
    "400": "Invalid input: the message and `details.fields` name the field.",
    "401": "No API key or session, or the key is not valid (revoked, malformed).",
    "403": "The key's scopes or the person's role do not allow this.",
    "404": "No such object in this organization (or an invalid cursor).",
    "409": "Refused by a governance rule or the object's state; `code` names the rule.",
    "413": "The request body is over the limit (README, HTTP API).",
    "429": "A rate limit was reached (README, Limits); retry after `Retry-After` seconds.",
}
READ_ERRORS = ("400", "401", "403", "404")
WRITE_ERRORS = READ_ERRORS + ("409", "413", "429")


class ApiSchema(AutoSchema):
    """drf-spectacular's AutoSchema plus the error answers every operation can give, each
    with the shared error body (writes also 409, 413 and 429; reads are not rate limited)."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        codes = READ_ERRORS if self.method in ("GET", "HEAD", "OPTIONS") else WRITE_ERRORS
        for code in codes:
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    OpenApiResponse(ErrorSerializer, description=ERROR_RESPONSES[code]),
                    code,
                    direction=direction,
                )
        if "429" in responses:
            responses["429"].setdefault("headers", {})["Retry-After"] = {
                "schema": {"type": "integer"},
                "description": "Seconds to wait before retrying.",
            }
        if "401" in responses:
            responses["401"].setdefault("headers", {})["WWW-Authenticate"] = {
                "schema": {"type": "string"},
                "description": 'The scheme to authenticate with: `Bearer realm="api"`.',
            }
        return responses
