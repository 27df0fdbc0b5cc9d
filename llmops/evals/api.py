"""Evals API (README.md, "HTTP API"): datasets and bulk cases, eval runs (generic JSON and promptfoo).
An upload's answer carries the verdict under the organization's default policy; when
`model` names a catalog model the run becomes evidence on it (the catalog owns that link)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from llmops.catalog import services as catalog_services
from llmops.common import clean
from llmops.common.api import CreatedCursorPagination, json_object
from llmops.common.errors import InvalidInput
from llmops.tenancy.permissions import request_actor

from . import selectors, services
from .models import EvalCase, EvalDataset, EvalResult, EvalRun


class DatasetSerializer(serializers.ModelSerializer):
    cases = serializers.SerializerMethodField()

    class Meta:
        model = EvalDataset
        fields = ["id", "name", "description", "tags", "cases", "created_at"]

    def get_cases(self, obj) -> int | None:
        return getattr(obj, "case_total", None)


class CaseSerializer(serializers.ModelSerializer):
    class Meta:
        model = EvalCase
        fields = [
            "id",
            "input",
            "expected",
            "criteria",
            "tags",
            "source_kind",
            "source_label",
            "source_link",
            "created_at",
        ]


class RunSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model_id")

    class Meta:
        model = EvalRun
        fields = [
            "id",
            "tool",
            "model",
            "dataset",
            "dataset_case_count",
            "dataset_hash",
            "metrics",
            "commit",
            "ci_url",
            "uploaded_by_label",
            "created_at",
        ]


class ResultSerializer(serializers.ModelSerializer):
    class Meta:
        model = EvalResult
        fields = ["id", "case", "input", "output", "score", "passed", "error", "reason"]


class DatasetListView(ListAPIView):
    """`GET|POST /api/v1/eval-datasets`."""

    actions = {"GET": "eval.view", "POST": "eval.write"}
    serializer_class = DatasetSerializer
    pagination_class = CreatedCursorPagination

    def get_queryset(self):
        actor = request_actor(self.request)
        return selectors.dataset_list(org=actor.org, q=self.request.query_params.get("q", ""))

    @extend_schema(request=DatasetSerializer, responses={201: DatasetSerializer})
    def post(self, request):
        actor = request_actor(request)
        body = json_object(request)
        dataset = services.dataset_create(
            actor=actor,
            name=clean.text(body.get("name"), field="name", max_length=200),
            description=clean.text(body.get("description"), field="description", max_length=20000),
            tags=body.get("tags") or [],
        )
        dataset.case_total = 0
        return Response(DatasetSerializer(dataset).data, status=201)


class DatasetCasesView(ListAPIView):
    """`GET|POST /api/v1/eval-datasets/{id}/cases`; POST takes {"cases": [...]} (at most
    5,000) or a single case object."""

    actions = {"GET": "eval.view", "POST": "eval.write"}
    serializer_class = CaseSerializer
    pagination_class = CreatedCursorPagination

    def get_queryset(self):
        actor = request_actor(self.request)
        dataset = selectors.dataset_get(org=actor.org, pk=self.kwargs["pk"])
        return selectors.dataset_cases(org=actor.org, dataset=dataset)

    @extend_schema(
        request=inline_serializer("CasesIn", {"cases": CaseSerializer(many=True)}),
        responses={
            201: inline_serializer(
                "CasesOut",
                {"created": serializers.IntegerField(), "ids": serializers.ListField()},
            )
        },
    )
    def post(self, request, pk: int):
        actor = request_actor(request)
        dataset = selectors.dataset_get(org=actor.org, pk=pk)
        data = request.data
        if isinstance(data, dict) and "cases" in data:
            cases = data["cases"]
        elif isinstance(data, list):
            cases = data
        elif isinstance(data, dict):
            cases = [data]
        else:
            raise InvalidInput('Send {"cases": [...]}.', field="cases")
        created = services.cases_bulk_create(
            actor=actor, dataset=dataset, cases=cases, source_kind="import"
        )
        return Response({"created": len(created), "ids": [c.pk for c in created]}, status=201)


def run_answer(run, evidence, org) -> dict:
    """The upload answer: the run, and its verdict under the policy it was checked
    against (the model's evidence link when there is one, else the default policy)."""
    if evidence is not None:
        verdict = evidence.verdict
    else:
        verdict = services.policy_evaluate(
            policy=services.policy_default(org=org), run=run
        ).as_dict()
    data = RunSerializer(run).data
    data.update(
        {
            "passed": verdict["passed"],
            "policy": verdict["policy"],
            "checks": verdict["checks"],
            "evidence": (
                {
                    "model": evidence.model_version.model_id,
                    "model_version": evidence.model_version_id,
                }
                if evidence is not None
                else None
            ),
        }
    )
    return data


RUN_FIELDS = {"tool", "metrics", "results", "dataset", "model", "commit", "ci_url"}


class RunListView(ListAPIView):
    """`GET /api/v1/eval-runs`, `POST /api/v1/eval-runs` (generic JSON run)."""

    actions = {"GET": "eval.view", "POST": "eval.write"}
    serializer_class = RunSerializer
    pagination_class = CreatedCursorPagination

    def get_queryset(self):
        actor = request_actor(self.request)
        g = self.request.query_params
        return selectors.run_list(
            org=actor.org, tool=g.get("tool", ""), model_id=g.get("model", "")
        )

    @extend_schema(
        request=inline_serializer(
            "EvalRunIn",
            {
                "tool": serializers.ChoiceField(EvalRun.Tool.values),
                "metrics": serializers.DictField(child=serializers.FloatField(), required=False),
                "results": serializers.ListField(child=serializers.DictField(), required=False),
                "dataset": serializers.IntegerField(required=False),
                "model": serializers.CharField(required=False),
                "commit": serializers.CharField(required=False),
                "ci_url": serializers.CharField(required=False),
            },
        ),
        responses={201: RunSerializer},
    )
    def post(self, request):
        actor = request_actor(request)
        body = json_object(request)
        unknown = set(body) - RUN_FIELDS
        if unknown:
            name = sorted(unknown)[0]
            raise InvalidInput(f"Unknown field '{name}'.", field=name)
        model, model_id = catalog_services.model_ref_resolve(actor=actor, ref=body.get("model"))
        run, evidence = catalog_services.model_run_record(
            actor=actor,
            model=model,
            run_kwargs={
                "tool": body.get("tool") or "",
                "metrics": body.get("metrics"),
                "results": body.get("results"),
                "dataset": body.get("dataset"),
                "model_id": model_id,
                "commit": body.get("commit") or "",
                "ci_url": body.get("ci_url") or "",
            },
        )
        return Response(run_answer(run, evidence, actor.org), status=201)


class PromptfooRunView(APIView):
    """`POST /api/v1/eval-runs/promptfoo?model=ID&dataset=&commit=&ci_url=` with promptfoo's
    results JSON as the body."""

    actions = {"POST": "eval.write"}

    @extend_schema(
        parameters=[
            OpenApiParameter("model", str),
            OpenApiParameter("dataset", int),
            OpenApiParameter("commit", str),
            OpenApiParameter("ci_url", str),
        ],
        request=inline_serializer("PromptfooResults", {"results": serializers.DictField()}),
        responses={201: RunSerializer},
    )
    def post(self, request):
        actor = request_actor(request)
        g = request.query_params
        model, model_id = catalog_services.model_ref_resolve(actor=actor, ref=g.get("model"))
        kwargs = services.promptfoo_parse(request.data, model=model_id)
        if model_id:
            kwargs["model_id"] = model_id
        kwargs.update(
            dataset=g.get("dataset") or None,
            commit=g.get("commit", ""),
            ci_url=g.get("ci_url", ""),
        )
        run, evidence = catalog_services.model_run_record(
            actor=actor, model=model, run_kwargs=kwargs
        )
        return Response(run_answer(run, evidence, actor.org), status=201)


class RunDetailView(APIView):
    """`GET /api/v1/eval-runs/{id}` with its verdict under the default policy and its
    first 500 per-case results."""

    actions = {"GET": "eval.view"}

    @extend_schema(responses=RunSerializer)
    def get(self, request, pk: int):
        actor = request_actor(request)
        run = selectors.run_get(org=actor.org, pk=pk)
        data = run_answer(run, None, actor.org)
        data.pop("evidence", None)
        data["results"] = ResultSerializer(
            selectors.run_results(org=actor.org, run=run)[:500], many=True
        ).data
        return Response(data)
