"""Incidents API (README.md, "HTTP API"): incidents list/create/get, transition, timeline, alert intake,
runbooks. Thin: parse, call one service or selector, serialize."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from llmops.common.api import PAGE_PARAMETERS, CreatedCursorPagination, json_object, paginated
from llmops.common.errors import InvalidInput
from llmops.tenancy.permissions import request_actor

from . import selectors, services
from .models import Category, Incident, RunbookVersion, Severity, Source, Status


def _choice(value: str, allowed, field: str) -> str:
    if value and value not in allowed:
        raise InvalidInput(
            f"Unknown {field} {value!r}; use one of {', '.join(allowed)}.", field=field
        )
    return value


def _user(user) -> str | None:
    return user.get_username() if user is not None else None


def incident_data(incident: Incident, *, full: bool = False) -> dict:
    code, name = incident.owasp
    data = {
        "number": incident.number,
        "ref": incident.ref,
        "title": incident.title,
        "status": incident.status,
        "severity": incident.severity,
        "peak_severity": incident.peak_severity,
        "category": incident.category,
        "owasp": {"id": code, "name": name},
        "source": incident.source,
        "dedupe_key": incident.dedupe_key,
        "commander": _user(incident.commander),
        "reporter": _user(incident.reporter) or incident.reporter_label,
        "users_affected": incident.users_affected,
        "cost_impact_usd": str(incident.cost_impact_usd)
        if incident.cost_impact_usd is not None
        else None,
        "detected_at": incident.detected_at,
        "acknowledged_at": incident.acknowledged_at,
        "mitigated_at": incident.mitigated_at,
        "resolved_at": incident.resolved_at,
        "closed_at": incident.closed_at,
        "duplicate_of": incident.duplicate_of.number if incident.duplicate_of_id else None,
        "allowed_transitions": list(incident.allowed_transitions),
        "url": services.incident_link(incident),
    }
    if full:
        data["summary"] = incident.summary
        data["mitigation_note"] = incident.mitigation_note
        data["alert_count"] = incident.alert_count
        data["serious"] = (
            {
                "kind": incident.serious_kind,
                "aware_at": incident.aware_at,
                "report_due_at": incident.report_due_at,
                "initial_report_at": incident.initial_report_at,
                "final_report_at": incident.final_report_at,
            }
            if incident.serious
            else None
        )
        data["evidence"] = [
            {
                "kind": e.kind,
                "ref": e.ref,
                "label": e.label,
                "url": e.url,
                "snapshot_sha256": e.snapshot_hash,
                "linked_at": e.created_at,
            }
            for e in incident.evidence.all()
        ]
        data["checklists"] = [
            {
                "runbook": run.runbook_id,
                "title": run.runbook_version.title,
                "version": run.runbook_version.number,
                "matches": run.unmatched_at is None,
                "steps": [
                    {
                        "id": step.pk,
                        "text": step.text,
                        "role": step.role,
                        "done": step.done,
                        "done_by": step.done_by_label or None,
                        "done_at": step.done_at,
                    }
                    for step in run.steps.all()
                ],
            }
            for run in selectors.incident_checklists(incident=incident)
        ]
        data["eval_cases"] = [
            {"id": link.eval_case_id, "dataset": link.dataset_name, "how": link.how}
            for link in incident.eval_cases.all()
        ]
    return data


def timeline_data(entry) -> dict:
    return {
        "id": entry.pk,
        "kind": entry.kind,
        "body": entry.body,
        "data": entry.data,
        "actor": entry.actor_label,
        "at": entry.created_at,
    }


def runbook_data(runbook, version: RunbookVersion | None) -> dict:
    return {
        "id": runbook.pk,
        "slug": runbook.slug,
        "archived": runbook.archived,
        "stale": runbook.is_stale,
        "reviewed_at": runbook.reviewed_at,
        "version": version.number if version else None,
        "title": version.title if version else "",
        "body": version.body if version else "",
        "steps": version.steps if version else [],
        "conditions": {
            "category": version.category or None,
            "min_severity": version.min_severity or None,
            "model": version.model_id or None,
            "prompt": version.prompt_name or None,
        }
        if version
        else {},
    }


class IncidentPagination(CreatedCursorPagination):
    ordering = "-number"


class TimelinePagination(CreatedCursorPagination):
    ordering = "id"
    page_size = 200


_IncidentOut = inline_serializer(
    "Incident",
    {
        "number": serializers.IntegerField(),
        "ref": serializers.CharField(),
        "title": serializers.CharField(),
        "status": serializers.ChoiceField(Status.choices),
        "severity": serializers.ChoiceField(Severity.choices),
        "peak_severity": serializers.ChoiceField(Severity.choices),
        "category": serializers.ChoiceField(Category.choices),
        "owasp": inline_serializer(
            "OwaspCategory",
            {"id": serializers.CharField(), "name": serializers.CharField()},
        ),
        "source": serializers.ChoiceField(Source.choices),
        "dedupe_key": serializers.CharField(),
        "commander": serializers.CharField(allow_null=True),
        "reporter": serializers.CharField(allow_null=True),
        "users_affected": serializers.IntegerField(allow_null=True),
        "cost_impact_usd": serializers.CharField(allow_null=True, help_text="a decimal"),
        "detected_at": serializers.DateTimeField(),
        "acknowledged_at": serializers.DateTimeField(allow_null=True),
        "mitigated_at": serializers.DateTimeField(allow_null=True),
        "resolved_at": serializers.DateTimeField(allow_null=True),
        "closed_at": serializers.DateTimeField(allow_null=True),
        "duplicate_of": serializers.IntegerField(allow_null=True),
        "allowed_transitions": serializers.ListField(child=serializers.ChoiceField(Status.choices)),
        "url": serializers.CharField(),
    },
)


_TimelineOut = inline_serializer(
    "TimelineEntry",
    {
        "id": serializers.IntegerField(),
        "kind": serializers.CharField(),
        "body": serializers.CharField(),
        "actor": serializers.CharField(),
        "at": serializers.DateTimeField(),
    },
)
_RunbookOut = inline_serializer(
    "Runbook",
    {
        "id": serializers.IntegerField(),
        "title": serializers.CharField(),
        "version": serializers.IntegerField(allow_null=True, help_text="null: no version yet"),
        "stale": serializers.BooleanField(),
        "steps": serializers.ListField(child=serializers.DictField()),
        "conditions": serializers.DictField(),
    },
)


class IncidentListCreate(APIView):
    """`GET|POST /api/v1/incidents`"""

    actions = {"GET": "incident.view", "POST": "incident.open"}

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, description="a status, or `open`"),
            OpenApiParameter("severity", str),
            OpenApiParameter("category", str),
            *PAGE_PARAMETERS,
        ],
        responses=paginated(_IncidentOut),
        operation_id="incidents_list",
    )
    def get(self, request):
        actor = request_actor(request)
        g = request.query_params
        qs = selectors.incident_list(
            org=actor.org,
            status=_choice(g.get("status", ""), [*Status.values, "open"], "status"),
            severity=_choice(g.get("severity", ""), Severity.values, "severity"),
            category=_choice(g.get("category", ""), Category.values, "category"),
            commander=g.get("commander", ""),
        ).order_by("-number")
        paginator = IncidentPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response([incident_data(i) for i in page])

    @extend_schema(
        request=inline_serializer(
            "IncidentCreate",
            {
                "title": serializers.CharField(),
                "category": serializers.ChoiceField(Category.choices),
                "severity": serializers.ChoiceField(Severity.choices, required=False),
                "summary": serializers.CharField(required=False),
                "detected_at": serializers.DateTimeField(required=False),
                "users_affected": serializers.IntegerField(required=False),
                "cost_impact_usd": serializers.DecimalField(14, 2, required=False),
            },
        ),
        responses={201: _IncidentOut},
    )
    def post(self, request):
        actor = request_actor(request)
        body = json_object(request)
        incident = services.incident_open(
            actor=actor,
            title=body.get("title"),
            category=body.get("category"),
            severity=body.get("severity"),
            summary=body.get("summary", ""),
            source=Source.API,
            detected_at=body.get("detected_at"),
            users_affected=body.get("users_affected"),
            cost_impact_usd=body.get("cost_impact_usd"),
        )
        return Response(incident_data(incident, full=True), status=status.HTTP_201_CREATED)


class IncidentDetail(APIView):
    """`GET /api/v1/incidents/{number}`"""

    actions = {"GET": "incident.view"}

    @extend_schema(responses=_IncidentOut, operation_id="incidents_get")
    def get(self, request, number: int):
        actor = request_actor(request)
        incident = selectors.incident_get(org=actor.org, number=number)
        return Response(incident_data(incident, full=True))


class IncidentTransition(APIView):
    """`POST /api/v1/incidents/{number}/transition` `{"to", "note", "at"?, "severity"?,
    "duplicate_of"?}`; 409 names the rule that blocks."""

    actions = {"POST": "incident.manage"}

    @extend_schema(
        request=inline_serializer(
            "IncidentTransitionIn",
            {
                "to": serializers.ChoiceField(Status.choices),
                "note": serializers.CharField(required=False),
                "at": serializers.DateTimeField(required=False),
                "severity": serializers.ChoiceField(Severity.choices, required=False),
                "severity_reason": serializers.CharField(
                    required=False,
                    help_text="Required with a severity change after mitigation (audited).",
                ),
                "duplicate_of": serializers.IntegerField(required=False),
            },
        ),
        responses=_IncidentOut,
    )
    def post(self, request, number: int):
        actor = request_actor(request)
        incident = selectors.incident_get(org=actor.org, number=number)
        body = json_object(request)
        if not body.get("to"):
            raise InvalidInput("Name the status to move to in `to`.", field="to")
        incident = services.incident_transition(
            actor=actor,
            incident=incident,
            to=body.get("to"),
            note=body.get("note", ""),
            at=body.get("at"),
            duplicate_of=body.get("duplicate_of"),
            severity=body.get("severity"),
            severity_reason=body.get("severity_reason", ""),
        )
        return Response(incident_data(incident, full=True))


class IncidentEvalCaseLink(APIView):
    """`POST /api/v1/incidents/{number}/eval-cases` `{"case", "note"?}`: a maintainer links an
    existing eval case as this incident's failure case (audited; personal keys and sessions
    only). Cases created from the incident are linked already."""

    actions = {"POST": "incident.manage"}

    @extend_schema(
        request=inline_serializer(
            "IncidentEvalCaseLinkIn",
            {"case": serializers.IntegerField(), "note": serializers.CharField(required=False)},
        ),
        responses={
            201: inline_serializer(
                "IncidentEvalCaseLink",
                {
                    "id": serializers.IntegerField(),
                    "dataset": serializers.CharField(),
                    "how": serializers.CharField(),
                    "note": serializers.CharField(),
                },
            )
        },
        operation_id="incidents_eval_case_link",
    )
    def post(self, request, number: int):
        actor = request_actor(request)
        incident = selectors.incident_get(org=actor.org, number=number)
        body = json_object(request)
        case_id = body.get("case")
        if isinstance(case_id, bool) or not isinstance(case_id, int) or case_id < 1:
            raise InvalidInput("case must be an eval case id (a positive integer).", field="case")
        case = selectors.eval_case_get(org=actor.org, case_id=case_id)
        link = services.incident_link_eval_case(
            actor=actor, incident=incident, case=case, note=body.get("note", "")
        )
        return Response(
            {
                "id": link.eval_case_id,
                "dataset": link.dataset_name,
                "how": link.how,
                "note": link.note,
            },
            status=status.HTTP_201_CREATED,
        )


class IncidentTimeline(APIView):
    """`GET|POST /api/v1/incidents/{number}/timeline` `{"note"}` (append-only)."""

    actions = {"GET": "incident.view", "POST": "incident.open"}

    @extend_schema(responses=paginated(_TimelineOut), parameters=PAGE_PARAMETERS)
    def get(self, request, number: int):
        actor = request_actor(request)
        incident = selectors.incident_get(org=actor.org, number=number)
        paginator = TimelinePagination()
        page = paginator.paginate_queryset(
            selectors.incident_timeline(incident=incident), request, view=self
        )
        return paginator.get_paginated_response([timeline_data(e) for e in page])

    @extend_schema(
        request=inline_serializer("TimelineNoteIn", {"note": serializers.CharField()}),
        responses={201: _TimelineOut},
    )
    def post(self, request, number: int):
        actor = request_actor(request)
        incident = selectors.incident_get(org=actor.org, number=number)
        entry = services.incident_note(
            actor=actor, incident=incident, note=json_object(request).get("note")
        )
        return Response(timeline_data(entry), status=status.HTTP_201_CREATED)


_AlertOut = inline_serializer(
    "AlertOut",
    {
        "number": serializers.IntegerField(),
        "ref": serializers.CharField(),
        "created": serializers.BooleanField(
            help_text="201 and true: a new incident; 200 and false: appended to an open one."
        ),
    },
)


class AlertIntake(APIView):
    """`POST /api/v1/incidents/alerts` `{"dedupe_key", "title", "category", "severity"?,
    "details"}` -> 201 `{"number", "created": true}` or 200 `{"number", "created": false}`."""

    actions = {"POST": "incident.open"}
    throttle_scope = "alerts"  # API rate limits: llmops/tenancy/throttling.py

    @extend_schema(
        request=inline_serializer(
            "AlertIn",
            {
                "dedupe_key": serializers.CharField(),
                "title": serializers.CharField(),
                "category": serializers.ChoiceField(Category.choices),
                "severity": serializers.ChoiceField(Severity.choices, required=False),
                "details": serializers.JSONField(required=False),
            },
        ),
        responses={201: _AlertOut, 200: _AlertOut},
    )
    def post(self, request):
        actor = request_actor(request)
        body = json_object(request)
        incident, created = services.alert_receive(
            actor=actor,
            dedupe_key=body.get("dedupe_key"),
            title=body.get("title"),
            category=body.get("category"),
            severity=body.get("severity"),
            details=body.get("details"),
        )
        return Response(
            {"number": incident.number, "ref": incident.ref, "created": created},
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class RunbookListCreate(APIView):
    """`GET|POST /api/v1/runbooks`"""

    actions = {"GET": "runbook.view", "POST": "runbook.manage"}

    @extend_schema(
        responses=paginated(_RunbookOut),
        parameters=[OpenApiParameter("archived", bool, description="include archived runbooks")],
    )
    def get(self, request):
        actor = request_actor(request)
        include_archived = request.query_params.get("archived") in ("1", "true")
        return Response(
            {
                "results": [
                    runbook_data(r, r.latest)
                    for r in selectors.runbook_list(
                        org=actor.org, include_archived=include_archived
                    )
                ],
                "next": None,
            }
        )

    @extend_schema(
        request=inline_serializer(
            "RunbookIn",
            {
                "title": serializers.CharField(),
                "body": serializers.CharField(required=False),
                "steps": serializers.ListField(child=serializers.DictField(), required=False),
                "category": serializers.ChoiceField(Category.choices, required=False),
                "min_severity": serializers.CharField(required=False),
                "model": serializers.CharField(required=False),
                "prompt": serializers.CharField(required=False),
            },
        ),
        responses={201: _RunbookOut},
    )
    def post(self, request):
        actor = request_actor(request)
        body = json_object(request)
        version = services.runbook_create(
            actor=actor,
            title=body.get("title"),
            body=body.get("body", ""),
            steps=body.get("steps") or [],
            category=body.get("category") or "",
            min_severity=body.get("min_severity") or "",
            model_id=body.get("model") or "",
            prompt_name=body.get("prompt") or "",
        )
        return Response(runbook_data(version.runbook, version), status=status.HTTP_201_CREATED)
