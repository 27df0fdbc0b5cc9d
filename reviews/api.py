"""Reviews API (README.md, "HTTP API"): queues list/create/get, claim (200 item | 204), review, release,
stats, export. Thin: parse, call a service or selector, serialize."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from llmops.common.api import PAGE_PARAMETERS, CreatedCursorPagination, paginated
from llmops.tenancy.permissions import request_actor

from . import selectors, services
from .models import QueueItem


class ReviewQueueOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    instructions = serializers.CharField()
    rubric = serializers.JSONField()
    reviewers_per_item = serializers.IntegerField()
    lease_minutes = serializers.IntegerField()
    sla_hours = serializers.IntegerField(allow_null=True)
    eval_dataset = serializers.IntegerField(source="eval_dataset_id", allow_null=True)
    active = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class ReviewQueueIn(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    instructions = serializers.CharField(required=False, allow_blank=True, default="")
    rubric = serializers.JSONField(required=False)
    reviewers_per_item = serializers.IntegerField(required=False, default=1)
    lease_minutes = serializers.IntegerField(required=False, default=10)
    sla_hours = serializers.IntegerField(required=False, allow_null=True, default=None)
    eval_dataset = serializers.IntegerField(required=False, allow_null=True, default=None)
    active = serializers.BooleanField(required=False, default=True)


class QueueReviewIn(serializers.Serializer):
    answers = serializers.JSONField()
    corrected_output = serializers.CharField(required=False, allow_blank=True, default="")
    comment = serializers.CharField(required=False, allow_blank=True, default="")


def item_payload(assignment, request=None) -> dict:
    item = selectors.item_for_assignment(assignment=assignment)
    gen = item.generation
    queue = item.queue
    return {
        "id": item.pk,
        "queue": queue.pk,
        "priority": item.priority,
        "due_at": item.due_at,
        "reviews_needed": item.reviews_needed,
        "reviews_done": item.reviews_done,
        "rubric": queue.rubric,
        "lease_expires_at": assignment.lease_expires_at,
        "generation": {
            "external_id": gen.external_id,
            "trace_id": gen.trace_id,
            "created_at": gen.created_at,
            "prompt": {"name": gen.prompt_name, "version": gen.prompt_version},
            "model": gen.model_id,
            "input": gen.input,
            "output": gen.output,
            "context": gen.context,
            "tool_calls": gen.tool_calls,
            "metadata": gen.metadata,
            "tags": gen.tags,
            "status": gen.status,
            "error": gen.error,
        },
    }


class QueueListApi(APIView):
    actions = {"GET": "queue.view", "POST": "queue.manage"}

    @extend_schema(
        operation_id="queues_list",
        responses=paginated(ReviewQueueOut),
        parameters=PAGE_PARAMETERS,
    )
    def get(self, request):
        actor = request_actor(request)
        paginator = CreatedCursorPagination()
        page = paginator.paginate_queryset(selectors.queue_list(actor=actor), request, view=self)
        return paginator.get_paginated_response(ReviewQueueOut(page, many=True).data)

    @extend_schema(
        operation_id="queues_create", request=ReviewQueueIn, responses={201: ReviewQueueOut}
    )
    def post(self, request):
        actor = request_actor(request)
        data = ReviewQueueIn(data=request.data)
        data.is_valid(raise_exception=True)
        queue = services.queue_create(actor=actor, **data.validated_data)
        return Response(ReviewQueueOut(queue).data, status=status.HTTP_201_CREATED)


class QueueDetailApi(APIView):
    actions = {"GET": "queue.view"}

    @extend_schema(operation_id="queues_get", responses=ReviewQueueOut)
    def get(self, request, queue_id: int):
        actor = request_actor(request)
        return Response(ReviewQueueOut(selectors.queue_get(actor=actor, queue_id=queue_id)).data)


# Writes name the read action for the scope check: the object is looked up first (another
# organization's is a 404), then the service checks the write right (403 without it).


class QueueClaimApi(APIView):
    actions = {"POST": "queue.view"}

    @extend_schema(
        operation_id="queues_claim",
        request=None,
        responses={200: OpenApiTypes.OBJECT, 204: None},
        description="The next item with its rubric and lease, or 204 when nothing is left for you.",
    )
    def post(self, request, queue_id: int):
        actor = request_actor(request)
        queue = selectors.queue_get(actor=actor, queue_id=queue_id)
        assignment = services.item_claim(actor=actor, queue=queue)
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(item_payload(assignment))


def _item(actor, item_id) -> QueueItem:
    return selectors.item_get(actor=actor, item_id=item_id)


class ItemReviewApi(APIView):
    actions = {"POST": "queue.view"}

    @extend_schema(
        operation_id="queue_items_review",
        request=QueueReviewIn,
        responses={201: OpenApiTypes.OBJECT},
    )
    def post(self, request, item_id: int):
        actor = request_actor(request)
        item = _item(actor, item_id)
        data = QueueReviewIn(data=request.data)
        data.is_valid(raise_exception=True)
        review = services.review_submit(actor=actor, item=item, **data.validated_data)
        return Response(
            {
                "id": review.pk,
                "item": item.pk,
                "answers": review.answers,
                "corrected_output": review.corrected_output,
                "comment": review.comment,
                "time_spent_ms": review.time_spent_ms,
                "created_at": review.created_at,
            },
            status=status.HTTP_201_CREATED,
        )


class ItemReleaseApi(APIView):
    actions = {"POST": "queue.view"}

    @extend_schema(operation_id="queue_items_release", request=None, responses=OpenApiTypes.OBJECT)
    def post(self, request, item_id: int):
        actor = request_actor(request)
        assignment = services.item_release(actor=actor, item=_item(actor, item_id))
        return Response({"item": item_id, "state": assignment.state})


class QueueStatsApi(APIView):
    actions = {"GET": "queue.view"}

    @extend_schema(operation_id="queues_stats", responses=OpenApiTypes.OBJECT)
    def get(self, request, queue_id: int):
        actor = request_actor(request)
        queue = selectors.queue_get(actor=actor, queue_id=queue_id)
        progress = selectors.queue_progress(actor=actor, queues=[queue])[queue.pk]
        stats = selectors.queue_stats(queue=queue)
        return Response(
            {
                "queue": queue.pk,
                "progress": progress,
                "throughput": [
                    {"day": t["day"].isoformat(), "count": t["count"]} for t in stats["throughput"]
                ],
                "reviewers": [
                    {
                        "reviewer": r["username"],
                        "count": r["count"],
                        "avg_seconds": r["avg_s"],
                    }
                    for r in stats["reviewers"]
                ],
                "distributions": stats["distributions"],
                "agreement": stats["agreement"],
            }
        )


class QueueExportApi(APIView):
    actions = {"GET": "queue.view"}

    def perform_content_negotiation(self, request, force=False):
        # `?format=jsonl|csv` names the export, not a DRF renderer.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        operation_id="queues_export",
        parameters=[OpenApiParameter("format", str, enum=["jsonl", "csv"])],
        responses={
            (200, "application/x-ndjson"): OpenApiTypes.STR,
            (200, "text/csv"): OpenApiTypes.STR,
        },
    )
    def get(self, request, queue_id: int):
        actor = request_actor(request)
        queue = selectors.queue_get(actor=actor, queue_id=queue_id)
        fmt = request.query_params.get("format", "jsonl")
        return export_response(actor, queue, fmt)


def export_response(actor, queue, fmt: str):
    name, content_type, lines = services.queue_export(actor=actor, queue=queue, fmt=fmt)
    response = StreamingHttpResponse(lines, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def item_url(org_slug: str, item) -> str:
    return reverse(
        "reviews:item", kwargs={"org_slug": org_slug, "queue_id": item.queue_id, "item_id": item.pk}
    )
