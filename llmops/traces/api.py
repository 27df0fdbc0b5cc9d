"""`POST /api/v1/generations/batch` (the hot path: body bytes straight to msgspec, no DRF
parser or serializer) and `GET /api/v1/generations/{external_id}`."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from llmops.common.errors import TooLarge
from llmops.tenancy.permissions import request_actor

from . import selectors, services


def generation_json(g) -> dict:
    return {
        "id": g.pk,
        "external_id": g.external_id,
        "trace_id": g.trace_id or None,
        "created_at": g.created_at.isoformat(),
        "ingested_at": g.ingested_at.isoformat(),
        "prompt": {"name": g.prompt_name, "version": g.prompt_version} if g.prompt_name else None,
        "model": g.model_id,
        "model_version": g.model_version_id,
        "input": g.input,
        "output": _output(g),
        "context": g.context,
        "tool_calls": g.tool_calls,
        "metadata": g.metadata,
        "tags": g.tags,
        "user_ref": g.user_ref or None,
        "latency_ms": g.latency_ms,
        "input_tokens": g.input_tokens,
        "output_tokens": g.output_tokens,
        "cost_usd": str(g.cost_usd) if g.cost_usd is not None else None,
        "cost_source": g.cost_source or None,
        "status": g.status,
        "error": g.error or None,
    }


def _output(g):
    if g.output_is_json:
        import json

        try:
            return json.loads(g.output)
        except ValueError:
            return g.output
    return g.output


BatchAnswer = inline_serializer(
    "GenerationBatchAnswer",
    {
        "accepted": serializers.IntegerField(),
        "duplicates": serializers.IntegerField(),
        "rejected": serializers.IntegerField(),
        "sampled": serializers.IntegerField(),
        "errors": serializers.ListField(child=serializers.DictField()),
    },
)


class GenerationBatch(APIView):
    actions = {"POST": "generation.ingest", "GET": "generation.view"}
    throttle_scope = "ingest"  # API rate limits: llmops/tenancy/throttling.py
    parser_classes: list = []  # the body is read as bytes and validated by msgspec

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses={200: BatchAnswer},
        description=(
            'Body `{"generations": [item, ...]}`, at most 1,000 items and 5 MB (else 413). '
            "Per-item errors come back with their index; a repeated external_id is a duplicate."
        ),
        examples=[
            OpenApiExample(
                "One generation",
                value={
                    "generations": [
                        {
                            "external_id": "req-1",
                            "model": "claude-sonnet-4-5-20250929",
                            "prompt": {"name": "support-reply", "version": 3},
                            "input": [{"role": "user", "content": "Hi"}],
                            "output": "Hello!",
                            "latency_ms": 812,
                            "input_tokens": 120,
                            "output_tokens": 40,
                        }
                    ]
                },
                request_only=True,
            )
        ],
    )
    def post(self, request):
        actor = request_actor(request)
        declared = request.META.get("CONTENT_LENGTH") or "0"
        if declared.isascii() and declared.isdigit() and int(declared) > services.MAX_BODY_BYTES:
            raise TooLarge(
                f"The body is {declared} bytes; a batch may be at most "
                f"{services.MAX_BODY_BYTES} bytes.",
                details={"limit_bytes": services.MAX_BODY_BYTES},
            )
        result = services.generations_ingest(actor=actor, body=request.body)
        return Response(result.as_dict())

    @extend_schema(
        responses={200: OpenApiTypes.OBJECT},
        operation_id="generations_get_batch",
        description="The generation whose external id is `batch` (as `/generations/{id}`).",
    )
    def get(self, request):
        # "batch" is also a possible external id; GET it like any other.
        return GenerationDetail().get_object_response(request, "batch")


class GenerationDetail(APIView):
    actions = {"GET": "generation.view"}

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request, external_id: str):
        return self.get_object_response(request, external_id)

    def get_object_response(self, request, external_id: str):
        actor = request_actor(request)
        g = selectors.generation_by_external_id(org=actor.org, external_id=external_id)
        return Response(generation_json(g))
