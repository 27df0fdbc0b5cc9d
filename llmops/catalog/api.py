"""Model catalog API (README.md, "HTTP API"): list/filter, check, get, propose, decision, transition,
attach evidence. Thin: parse, call one selector or service, serialize."""

from __future__ import annotations

from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from llmops.common.api import CreatedCursorPagination, json_object
from llmops.common.errors import InvalidInput, NotFound
from llmops.evals import selectors as eval_selectors
from llmops.tenancy.permissions import request_actor

from . import selectors, services
from .models import ModelVersion, Provider


def _price(value):
    return float(value) if value is not None else None


class ModelVersionSerializer(serializers.ModelSerializer):
    input_price_per_mtok = serializers.SerializerMethodField()
    output_price_per_mtok = serializers.SerializerMethodField()
    replacement = serializers.SerializerMethodField()
    requested_by = serializers.CharField(source="requested_by_label")
    allowed = serializers.SerializerMethodField()
    allowed_reason = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            *services.PROPOSE_FIELD_ORDER,
            "requested_by",
            "status",
            "is_floating",
            "floating_flag_overridden",
            "break_glass_used",
            "allowed",
            "allowed_reason",
            "created_at",
        ]

    def get_input_price_per_mtok(self, obj) -> float | None:
        return _price(obj.input_price_per_mtok)

    def get_output_price_per_mtok(self, obj) -> float | None:
        return _price(obj.output_price_per_mtok)

    def get_replacement(self, obj) -> str | None:
        return obj.replacement.model_id if obj.replacement_id else None

    def _check(self, obj):
        # The same resolver as /models/check, so the list and the check never disagree.
        return selectors.check_model_version(obj)

    def get_allowed(self, obj) -> bool:
        return self._check(obj).allowed

    def get_allowed_reason(self, obj) -> str:
        return self._check(obj).reason


def evidence_dict(e) -> dict:
    return {
        "run": e.eval_run_id,
        "passed": e.passed,
        "verdict": e.verdict,
        "attached_by": e.attached_by_label,
        "created_at": e.created_at,
    }


def decision_dict(d) -> dict:
    return {
        "kind": d.kind,
        "decision": d.decision,
        "from": d.from_status,
        "to": d.to_status,
        "actor": d.actor_label,
        "comment": d.comment,
        "break_glass_reason": d.break_glass_reason or None,
        "at": d.at,
    }


def model_detail_dict(model, org) -> dict:
    data = ModelVersionSerializer(model).data
    data["evidence"] = [
        evidence_dict(e) for e in selectors.model_evidence(org=org, model=model)[:50]
    ]
    data["decisions"] = [
        decision_dict(d) for d in selectors.model_decisions(org=org, model=model)[:50]
    ]
    return data


def _bool_param(value: str | None) -> bool | None:
    if value in (None, ""):
        return None
    if value.lower() in ("1", "true", "yes"):
        return True
    if value.lower() in ("0", "false", "no"):
        return False
    raise ValidationError({"allowed": ["Use true or false."]})


class ModelListView(ListAPIView):
    """`GET /api/v1/models?status=approved&provider=&q=&allowed=true`, `POST` proposes."""

    actions = {"GET": "model.view", "POST": "model.propose"}
    serializer_class = ModelVersionSerializer
    pagination_class = CreatedCursorPagination

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, description="comma-separated statuses"),
            OpenApiParameter("provider", str, enum=Provider.values),
            OpenApiParameter("q", str),
            OpenApiParameter("allowed", bool, description="only models check would allow"),
        ]
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        actor = request_actor(self.request)
        g = self.request.query_params
        status = g.get("status", "")
        bad = [s for s in status.split(",") if s and s not in ModelVersion.Status.values]
        if bad:
            raise ValidationError({"status": [f"Unknown status '{bad[0]}'."]})
        provider = g.get("provider", "")
        if provider and provider not in Provider.values:
            raise ValidationError({"provider": [f"Unknown provider '{provider}'."]})
        return selectors.model_list(
            org=actor.org,
            status=status,
            provider=provider,
            q=g.get("q", "").strip(),
            allowed=_bool_param(g.get("allowed")),
        )

    @extend_schema(request=ModelVersionSerializer, responses={201: ModelVersionSerializer})
    def post(self, request):
        actor = request_actor(request)
        body = json_object(request)
        model = services.model_propose(actor=actor, **body)
        return Response(ModelVersionSerializer(model).data, status=201)


class ModelCheckView(APIView):
    """`GET /api/v1/models/check?model=ID` -> {"allowed", "status", "reason"}."""

    actions = {"GET": "model.view"}

    @extend_schema(
        parameters=[OpenApiParameter("model", str, required=True)],
        responses=inline_serializer(
            "ModelCheck",
            {
                "allowed": serializers.BooleanField(),
                "status": serializers.CharField(allow_null=True),
                "reason": serializers.CharField(),
            },
        ),
    )
    def get(self, request):
        actor = request_actor(request)
        model_id = request.query_params.get("model", "").strip()
        if not model_id:
            raise InvalidInput("Name the model: ?model=<model id>.", field="model")
        return Response(selectors.model_check(org=actor.org, model_id=model_id).as_dict())


class ModelDetailView(APIView):
    actions = {"GET": "model.view"}

    @extend_schema(responses=ModelVersionSerializer)
    def get(self, request, pk: int | None = None, model_id: str = ""):
        actor = request_actor(request)
        if pk is not None:
            model = selectors.model_get(org=actor.org, pk=pk)
        else:
            model = selectors.model_by_model_id(org=actor.org, model_id=model_id)
            if model is None:
                raise NotFound("No such model version.")
        return Response(model_detail_dict(model, actor.org))


class ModelByIdView(ModelDetailView):
    """`GET /api/v1/models/{model_id}`: the same answer, by exact model id."""

    @extend_schema(operation_id="v1_models_by_model_id_retrieve", responses=ModelVersionSerializer)
    def get(self, request, model_id: str):
        return super().get(request, model_id=model_id)


class _ModelLifecycleView(APIView):
    """The shape of a lifecycle write on one model version (`POST /api/v1/models/{id}/...`):
    load it in the organization, hand the body to `apply` (one service call), answer with
    the model's detail. Subclasses give `apply` and the request schema."""

    # Seeing the model is enough to be answered; the service checks `model.decide` after the
    # organization-scoped lookup, so another organization's model is 404, never 403.
    actions = {"POST": "model.view"}

    def apply(self, actor, model: ModelVersion, body: dict) -> ModelVersion:
        raise NotImplementedError

    def post(self, request, pk: int):
        actor = request_actor(request)
        model = selectors.model_get(org=actor.org, pk=pk)
        model = self.apply(actor, model, json_object(request))
        return Response(model_detail_dict(model, actor.org))


@extend_schema_view(
    post=extend_schema(
        request=inline_serializer(
            "ModelDecisionIn",
            {
                "decision": serializers.ChoiceField(["approve", "reject"]),
                "comment": serializers.CharField(required=False),
                "break_glass_reason": serializers.CharField(required=False),
            },
        ),
        responses=ModelVersionSerializer,
    )
)
class ModelDecisionView(_ModelLifecycleView):
    """`POST /api/v1/models/{id}/decision` {"decision", "comment", "break_glass_reason"?}."""

    def apply(self, actor, model, body):
        return services.model_decide(
            actor=actor,
            model=model,
            decision=body.get("decision", ""),
            comment=body.get("comment") or "",
            break_glass_reason=body.get("break_glass_reason"),
        )


@extend_schema_view(
    post=extend_schema(
        request=inline_serializer(
            "ModelTransitionIn",
            {
                "to": serializers.ChoiceField(["suspended", "approved", "deprecated", "retired"]),
                "reason": serializers.CharField(),
                "break_glass_reason": serializers.CharField(required=False),
            },
        ),
        responses=ModelVersionSerializer,
    )
)
class ModelTransitionView(_ModelLifecycleView):
    """`POST /api/v1/models/{id}/transition` {"to", "reason", "break_glass_reason"?}."""

    def apply(self, actor, model, body):
        return services.model_transition(
            actor=actor,
            model=model,
            to=body.get("to", ""),
            reason=body.get("reason") or "",
            break_glass_reason=body.get("break_glass_reason"),
        )


class ModelEvidenceView(APIView):
    """`POST /api/v1/models/{id}/evidence` {"run": id}: link an existing eval run."""

    actions = {"POST": "model.view"}  # the service checks eval.write or model.propose

    @extend_schema(
        request=inline_serializer("ModelEvidenceIn", {"run": serializers.IntegerField()}),
        responses=inline_serializer(
            "ModelEvidenceOut",
            {"run": serializers.IntegerField(), "passed": serializers.BooleanField()},
        ),
    )
    def post(self, request, pk: int):
        actor = request_actor(request)
        model = selectors.model_get(org=actor.org, pk=pk)
        body = json_object(request)
        run_id = body.get("run")
        if isinstance(run_id, bool) or not isinstance(run_id, int):
            raise InvalidInput("run must be an eval run id.", field="run")
        run = eval_selectors.run_get(org=actor.org, pk=run_id)
        evidence = services.model_attach_evidence(actor=actor, model=model, run=run)
        return Response(evidence_dict(evidence), status=201)
