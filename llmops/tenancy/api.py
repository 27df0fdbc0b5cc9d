"""`GET /api/v1/me`: who the request acts as (organization, user or key, role, scopes)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from .permissions import request_actor


class MeView(APIView):
    actions = {"GET": "org.view"}

    @extend_schema(
        responses=inline_serializer(
            "Me",
            {
                "organization": serializers.CharField(),
                "user": serializers.CharField(allow_null=True),
                "role": serializers.CharField(allow_null=True),
                "key": serializers.DictField(allow_null=True),
            },
        )
    )
    def get(self, request):
        actor = request_actor(request)
        key = actor.key
        return Response(
            {
                "organization": actor.org.slug,
                "user": actor.user.get_username() if actor.user is not None else None,
                "role": actor.role,
                "key": {
                    "prefix": key.prefix,
                    "name": key.name,
                    "kind": "machine" if key.is_machine else "personal",
                    "scopes": list(key.scopes),
                }
                if key is not None
                else None,
            }
        )
