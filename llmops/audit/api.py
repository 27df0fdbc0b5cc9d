"""`GET /api/v1/audit-events?action=&since=&cursor=`"""

from __future__ import annotations

from django.utils.dateparse import parse_datetime
from rest_framework import serializers
from rest_framework.generics import ListAPIView

from llmops.common.api import CreatedCursorPagination
from llmops.tenancy.permissions import request_actor

from . import selectors
from .chain import STORED
from .models import AuditEvent


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        # The stored columns but the organization (the key's own, so implied).
        fields = [name for name in STORED if name != "organization_id"]


class AuditPagination(CreatedCursorPagination):
    ordering = "-seq"


class AuditEventList(ListAPIView):
    actions = {"GET": "audit.view"}
    serializer_class = AuditEventSerializer
    pagination_class = AuditPagination

    def get_queryset(self):
        actor = request_actor(self.request)
        g = self.request.query_params
        since = None
        if g.get("since"):
            since = parse_datetime(g["since"])
            if since is None:
                from rest_framework.exceptions import ValidationError

                raise ValidationError(
                    {"since": ["Use an ISO 8601 date-time, e.g. 2026-01-31T00:00:00Z."]}
                )
        return selectors.event_list(
            org=actor.org, action=g.get("action", ""), actor=g.get("actor", ""), since=since
        )
