"""Prompt registry HTTP API (README.md, "HTTP API" and "Prompts"): thin views over services and selectors.
Resolve answers a warm request from the cache with no database query, key auth included."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from llmops.common.api import CreatedCursorPagination, paginated
from llmops.common.errors import InvalidInput, NotFound
from llmops.evals.services import policy_as_dict
from llmops.tenancy.authentication import actor_for_key
from llmops.tenancy.permissions import request_actor
from llmops.tenancy.policy import can_any

from . import selectors, services
from .content import NAME_RE
from .models import Prompt, PromptVersion

# -- output ------------------------------------------------------------------------------------


class PromptOut(serializers.ModelSerializer):
    labels = serializers.SerializerMethodField()
    latest_version = serializers.SerializerMethodField()

    class Meta:
        model = Prompt
        fields = [
            "name",
            "description",
            "tags",
            "required_approvals",
            "eval_policy",
            "labels",
            "latest_version",
            "created_at",
        ]

    def get_labels(self, obj) -> dict:
        return {
            lb.name: {
                "version": lb.version.number if lb.version else None,
                "protected": lb.is_protected,
            }
            for lb in selectors.prompt_labels(prompt=obj)
        }

    def get_latest_version(self, obj) -> dict | None:
        v = obj.versions.order_by("-number").first()
        return (
            {"number": v.number, "status": v.status, "content_hash": v.content_hash} if v else None
        )


class VersionOut(serializers.ModelSerializer):
    model = serializers.CharField(source="model.model_id")
    prompt = serializers.CharField(source="prompt.name")
    authors = serializers.SerializerMethodField()
    approvals = serializers.SerializerMethodField()
    eval_runs = serializers.SerializerMethodField()
    labels = serializers.SerializerMethodField()

    class Meta:
        model = PromptVersion
        fields = [
            "prompt",
            "number",
            "status",
            "content_hash",
            "template",
            "messages",
            "variables",
            "model",
            "params",
            "tools",
            "message",
            "source",
            "source_path",
            "source_commit",
            "authors",
            "author_emails",
            "created_by_label",
            "break_glass_reason",
            "approvals",
            "eval_runs",
            "labels",
            "created_at",
            "status_changed_at",
        ]

    def to_representation(self, obj):
        data = super().to_representation(obj)
        if obj.messages is not None:
            data.pop("template")
        else:
            data.pop("messages")
        return data

    def get_authors(self, obj) -> list[str]:
        return [u.username for u in selectors.version_authors(version=obj)]

    def get_approvals(self, obj) -> list[dict]:
        return [
            {
                "id": a.pk,
                "user": a.user.username,
                "decision": a.decision,
                "comment": a.comment,
                "break_glass_reason": a.break_glass_reason,
                "retracted_at": a.retracted_at,
                "created_at": a.created_at,
            }
            for a in selectors.version_approvals(version=obj)
        ]

    def get_eval_runs(self, obj) -> list[dict]:
        return [_link_out(link) for link in selectors.version_eval_links(version=obj)]

    def get_labels(self, obj) -> list[str]:
        return selectors.version_labels(version=obj)


def _link_out(link) -> dict:
    run = link.eval_run
    return {
        "id": run.pk,
        "passed": link.passed,
        "policy": link.verdict.get("policy")
        or (policy_as_dict(link.policy) if link.policy else {}),
        "checks": link.verdict.get("checks", []),
        "tool": run.tool,
        "metrics": run.metrics,
        "model": run.model_id,
        "content_hash": run.subject_content_hash,
        "counted": services.run_judged_version(run, link.version),
        "commit": run.commit,
        "ci_url": run.ci_url,
        "created_at": run.created_at,
    }


def _version_short(version: PromptVersion) -> dict:
    return {
        "name": version.prompt.name,
        "number": version.number,
        "status": version.status,
        "content_hash": version.content_hash,
        "variables": version.variables,
    }


_VERSION_SHORT_FIELDS = {
    "name": serializers.CharField(),
    "number": serializers.IntegerField(),
    "status": serializers.ChoiceField(PromptVersion.Status.choices),
    "content_hash": serializers.CharField(),
    "variables": serializers.ListField(child=serializers.CharField()),
}
# The schema of `_version_short` (version lists) and of a proposal's answer.
VersionSummaryOut = inline_serializer("VersionSummary", _VERSION_SHORT_FIELDS)
VersionProposedOut = inline_serializer(
    "VersionProposed",
    {
        **_VERSION_SHORT_FIELDS,
        "created": serializers.BooleanField(),
        "matches": serializers.IntegerField(
            required=False, help_text="200 only: the existing version the proposal is identical to."
        ),
        "detail": serializers.CharField(required=False),
    },
)


# -- input -------------------------------------------------------------------------------------


class PromptIn(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    tags = serializers.ListField(child=serializers.CharField(max_length=50), required=False)
    required_approvals = serializers.IntegerField(required=False, default=1)
    eval_policy = serializers.IntegerField(required=False, allow_null=True, default=None)


class VersionIn(serializers.Serializer):
    template = serializers.JSONField(required=False)
    messages = serializers.JSONField(required=False)
    model = serializers.CharField(max_length=200)
    params = serializers.JSONField(required=False)
    tools = serializers.JSONField(required=False)
    variables = serializers.JSONField(required=False)
    message = serializers.CharField(required=False, allow_blank=True, default="")
    submit = serializers.BooleanField(required=False, default=True)
    author = serializers.CharField(required=False, allow_blank=True, default="")


class ReviewIn(serializers.Serializer):
    decision = serializers.CharField()
    comment = serializers.CharField(required=False, allow_blank=True, default="")
    break_glass_reason = serializers.CharField(required=False, allow_blank=True, default="")


class DeployIn(serializers.Serializer):
    version = serializers.IntegerField()
    reason = serializers.CharField(required=False, allow_blank=True, default="")
    break_glass_reason = serializers.CharField(required=False, allow_blank=True, default="")


class SyncIn(serializers.Serializer):
    files = serializers.JSONField()
    commit = serializers.CharField(required=False, allow_blank=True, default="", max_length=64)
    author = serializers.CharField(required=False, allow_blank=True, default="")


def _valid(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _prompt(request, name: str):
    actor = request_actor(request)
    return actor, selectors.prompt_get(org=actor.org, name=name)


def _version(request, name: str, number: int):
    actor, prompt = _prompt(request, name)
    return actor, selectors.version_get(org=actor.org, prompt=prompt, number=number)


# -- views -------------------------------------------------------------------------------------


class PromptPagination(CreatedCursorPagination):
    ordering = "name"


class PromptList(ListAPIView):
    actions = {"GET": "prompt.view", "POST": "prompt.create"}
    serializer_class = PromptOut
    pagination_class = PromptPagination

    def get_queryset(self):
        actor = request_actor(self.request)
        g = self.request.query_params
        return selectors.prompt_list(
            org=actor.org, actor=actor, query=g.get("q", ""), tag=g.get("tag", "")
        )

    @extend_schema(request=PromptIn, responses={201: PromptOut})
    def post(self, request):
        actor = request_actor(request)
        data = _valid(PromptIn, request.data)
        prompt = services.prompt_create(actor=actor, **data)
        return Response(PromptOut(prompt).data, status=status.HTTP_201_CREATED)


class PromptDetail(APIView):
    actions = {"GET": "prompt.view"}

    @extend_schema(responses=PromptOut)
    def get(self, request, name):
        _, prompt = _prompt(request, name)
        return Response(PromptOut(prompt).data)


class VersionList(APIView):
    actions = {"GET": "prompt.view", "POST": "prompt.propose"}

    @extend_schema(responses=paginated(VersionSummaryOut), operation_id="prompts_versions_list")
    def get(self, request, name):
        _, prompt = _prompt(request, name)
        versions = selectors.prompt_versions(prompt=prompt)[:200]
        return Response({"results": [_version_short(v) for v in versions], "next": None})

    @extend_schema(request=VersionIn, responses={201: VersionProposedOut, 200: VersionProposedOut})
    def post(self, request, name):
        actor, prompt = _prompt(request, name)
        data = _valid(VersionIn, request.data)
        version, created = services.version_create(
            actor=actor,
            prompt=prompt,
            model=data["model"],
            template=data.get("template"),
            messages=data.get("messages"),
            params=data.get("params"),
            tools=data.get("tools"),
            variables=data.get("variables"),
            message=data["message"],
            submit=data["submit"],
            source=PromptVersion.Source.API,
            author_email=data["author"],
        )
        body = {**_version_short(version), "created": created}
        if created:
            return Response(body, status=status.HTTP_201_CREATED)
        latest = services.latest_number(prompt)
        body.update(matches=version.number, detail=services.identical_note(version, latest))
        return Response(body, status=status.HTTP_200_OK)


class VersionDetail(APIView):
    actions = {"GET": "prompt.view"}

    def check_permissions(self, request):
        # A version is immutable: changing or deleting one is a 405 for everybody (after
        # authentication), not a 403 that suggests another key might do it.
        if request.method in ("PUT", "PATCH", "DELETE"):
            if not request.user or not request.user.is_authenticated:
                raise exceptions.NotAuthenticated()
            raise exceptions.MethodNotAllowed(
                request.method,
                detail="A prompt version is immutable: propose a new version instead "
                "(POST /api/v1/prompts/{name}/versions).",
            )
        super().check_permissions(request)

    @extend_schema(responses=VersionOut)
    def get(self, request, name, number):
        _, version = _version(request, name, number)
        return Response(VersionOut(version).data)


class VersionReview(APIView):
    # The approve right is checked by the service after the lookup, so another
    # organization's version is a 404 before any 403 (keys without the scope get 403).
    actions = {"POST": "prompt.view"}

    @extend_schema(request=ReviewIn, responses={201: VersionOut})
    def post(self, request, name, number):
        actor, version = _version(request, name, number)
        data = _valid(ReviewIn, request.data)
        approval = services.version_review(actor=actor, version=version, **data)
        version.refresh_from_db()
        return Response(
            {
                "id": approval.pk,
                "decision": approval.decision,
                "break_glass": bool(approval.break_glass_reason),
                "version": _version_short(version),
            },
            status=status.HTTP_201_CREATED,
        )


class VersionEvalRuns(APIView):
    actions = {"POST": "eval.write"}
    promptfoo = False

    @extend_schema(request=dict, responses={201: dict})
    def post(self, request, name, number):
        actor, version = _version(request, name, number)
        run, link = services.version_record_eval_run(
            actor=actor, version=version, data=request.data, promptfoo=self.promptfoo
        )
        return Response(_link_out(link), status=status.HTTP_201_CREATED)


class VersionEvalRunsPromptfoo(VersionEvalRuns):
    promptfoo = True


class LabelDeploy(APIView):
    actions = {"POST": "prompt.deploy"}

    @extend_schema(request=DeployIn, responses={201: dict, 200: dict})
    def post(self, request, name, label):
        actor, prompt = _prompt(request, name)
        data = _valid(DeployIn, request.data)
        try:
            version = selectors.version_get(org=actor.org, prompt=prompt, number=data["version"])
        except NotFound:
            raise InvalidInput(f"{prompt.name} has no version {data['version']}.", field="version")
        deployment = services.label_deploy(
            actor=actor,
            prompt=prompt,
            label=label,
            version=version,
            reason=data["reason"],
            break_glass_reason=data["break_glass_reason"],
        )
        body = {"name": prompt.name, "label": label, "version": version.number}
        if deployment is None:
            return Response({**body, "changed": False})
        return Response(
            {
                **body,
                "changed": True,
                "from": deployment.from_version.number if deployment.from_version else None,
                "rollback": deployment.is_rollback,
                "break_glass": bool(deployment.break_glass_reason),
            },
            status=status.HTTP_201_CREATED,
        )


def _etag_matches(header: str, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    candidates = [c.strip() for c in header.split(",")]
    return etag in candidates or f"W/{etag}" in candidates


def _resolve_response(request, etag: str, body: bytes) -> HttpResponse:
    if _etag_matches(request.headers.get("If-None-Match", ""), etag):
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(body, content_type="application/json")
    response["ETag"] = etag
    response["Cache-Control"] = "private, no-cache"
    return response


def _resolve_fast(request, name: str) -> HttpResponse | None:
    """The hot path without DRF: a GET with a valid bearer key whose payload is found.
    Anything else returns None and takes the DRF path, so errors (401, 403, 404, 400) and
    session requests look exactly like every other API answer."""
    if request.method != "GET" or not NAME_RE.match(name):
        return None
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header[:7].lower() != "bearer ":
        return None
    found = actor_for_key(header[7:].strip(), request)
    if found is None:
        return None
    actor = found[1]
    if not can_any(actor, "prompt.view"):
        return None
    params = request.GET
    number = label = None
    if params.get("version"):
        if not params["version"].isdigit():
            return None
        number = int(params["version"])
    else:
        label = params.get("label") or "production"
        if not NAME_RE.match(label) or len(label) > 60:
            return None
    entry = selectors.resolve_payload(org_id=actor.org.pk, name=name, label=label, number=number)
    if entry is None:
        return None
    request.organization = actor.org  # for the request log line
    response = _resolve_response(request, *entry)
    # A JSON body for machines: no document to protect, so skip building a CSP header.
    response._csp_exempt = True
    return response


class Resolve(APIView):
    """The runtime read. The payload and its ETag come from the cache; a deploy bumps the
    prompt's cache generation after commit, so the next request sees the new version.
    A warm request with a key is answered before DRF's request wrapping (`_resolve_fast`),
    with the same authentication and policy check; the rest goes through DRF."""

    actions = {"GET": "prompt.view"}

    def dispatch(self, request, *args, **kwargs):
        fast = _resolve_fast(request, kwargs.get("name", ""))
        if fast is not None:
            return fast
        return super().dispatch(request, *args, **kwargs)

    @extend_schema(
        parameters=[
            OpenApiParameter("label", str, description="e.g. production (the default)"),
            OpenApiParameter("version", int, description="a version number instead of a label"),
        ],
        responses={200: dict, 304: None},
    )
    def get(self, request, name):
        actor = request_actor(request)
        params = request.query_params
        number = label = None
        if params.get("version"):
            try:
                number = int(params["version"])
            except ValueError:
                raise InvalidInput("version must be a number.", field="version")
        else:
            label = params.get("label") or "production"
            if not NAME_RE.match(label) or len(label) > 60:
                raise InvalidInput("No such label name.", field="label")
        if not NAME_RE.match(name):
            raise NotFound(f"No prompt named '{name}'.")
        entry = selectors.resolve_payload(
            org_id=actor.org.pk, name=name, label=label, number=number
        )
        if entry is None:
            what = f"version {number}" if number is not None else f"label '{label}'"
            raise NotFound(f"Prompt '{name}' has no {what}.")
        return _resolve_response(request, *entry)


class Sync(APIView):
    actions = {"POST": "prompt.propose"}

    @extend_schema(request=SyncIn, responses={200: dict})
    def post(self, request):
        actor = request_actor(request)
        data = _valid(SyncIn, request.data)
        results = services.prompts_sync(
            actor=actor, files=data["files"], commit=data["commit"], author=data["author"]
        )
        return Response(
            {
                "results": results,
                "created": sum(1 for r in results if r["created"]),
                "unchanged": sum(1 for r in results if not r["created"]),
            }
        )
