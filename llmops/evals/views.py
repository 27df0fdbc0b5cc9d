"""Evals pages: runs (list, detail with metrics vs thresholds and per-case results),
compare two runs, datasets (list, detail, add case, JSONL import and export), policies."""

from __future__ import annotations

import json

from django.contrib import messages
from django.http import StreamingHttpResponse
from django.shortcuts import redirect
from django.views.generic import TemplateView

from llmops.catalog import selectors as catalog_selectors
from llmops.common.errors import GovernanceError, InvalidInput, NotFound
from llmops.common.forms import form_error
from llmops.tenancy.mixins import OrgMixin
from llmops.tenancy.policy import can

from . import selectors, services
from .forms import (
    CASE_SOURCE_CHOICES,
    CaseForm,
    DatasetForm,
    ImportForm,
    PolicyForm,
    thresholds_text,
)
from .models import EvalRun

OUTCOMES = [("", "All outcomes"), ("passed", "Passed"), ("failed", "Failed"), ("error", "Errors")]


def _tags(text: str) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


class RunListView(OrgMixin, TemplateView):
    template_name = "evals/runs.html"
    action = "eval.view"

    def get_context_data(self, **kwargs):
        g = self.request.GET
        tool = g.get("tool", "") if g.get("tool", "") in EvalRun.Tool.values else ""
        f = {
            "tool": tool,
            "model": g.get("model", "").strip(),
            "dataset": g.get("dataset", "") if _is_number(g.get("dataset", "")) else "",
        }
        page = self.paginate(
            selectors.run_list(
                org=self.org, tool=tool, model_id=f["model"], dataset=f["dataset"] or None
            )
        )
        policy = services.policy_default(org=self.org)
        rows = [
            {"run": r, "verdict": services.policy_evaluate(policy=policy, run=r)}
            for r in page.object_list
        ]
        return super().get_context_data(
            page=page,
            rows=rows,
            f=f,
            filtered=any(f.values()),
            tools=EvalRun.Tool.choices,
            datasets=selectors.dataset_list(org=self.org),
            policy=policy,
            **kwargs,
        )


class RunDetailView(OrgMixin, TemplateView):
    template_name = "evals/run_detail.html"
    action = "eval.view"

    def get_context_data(self, **kwargs):
        run = selectors.run_get(org=self.org, pk=self.kwargs["pk"])
        g = self.request.GET
        policies = list(selectors.policy_list(org=self.org))
        policy = next((p for p in policies if str(p.pk) == g.get("policy")), None)
        policy = policy or services.policy_default(org=self.org)
        outcome = g.get("outcome", "") if g.get("outcome", "") in dict(OUTCOMES) else ""
        q = g.get("q", "").strip()
        page = self.paginate(selectors.run_results(org=self.org, run=run, outcome=outcome, q=q), 50)
        verdict = services.policy_evaluate(policy=policy, run=run)
        checked = {c["metric"] for c in verdict.checks}
        return super().get_context_data(
            run=run,
            policy=policy,
            policies=policies,
            verdict=verdict,
            other_metrics=sorted(
                (k, v) for k, v in (run.metrics or {}).items() if k not in checked
            ),
            page=page,
            outcomes=OUTCOMES,
            f={"outcome": outcome, "q": q},
            filtered=bool(outcome or q),
            evidence_for=catalog_selectors.evidence_for_run(org=self.org, run=run),
            **kwargs,
        )


class CompareView(OrgMixin, TemplateView):
    template_name = "evals/compare.html"
    action = "eval.view"

    def get_context_data(self, **kwargs):
        g = self.request.GET
        comparison = None
        if g.get("a") and g.get("b"):
            a = selectors.run_get(org=self.org, pk=g["a"])
            b = selectors.run_get(org=self.org, pk=g["b"])
            comparison = selectors.run_compare(org=self.org, a=a, b=b)
        return super().get_context_data(
            comparison=comparison,
            recent=selectors.run_list(org=self.org)[:50],
            f={"a": g.get("a", ""), "b": g.get("b", "")},
            **kwargs,
        )


def _is_number(text: str) -> bool:
    """ASCII digits only: str.isdigit() also accepts "²", which int() refuses."""
    return text.isascii() and text.isdigit()


class DatasetListView(OrgMixin, TemplateView):
    template_name = "evals/datasets.html"
    action = "eval.view"

    def get_context_data(self, **kwargs):
        q = self.request.GET.get("q", "").strip()
        kwargs.setdefault("form", DatasetForm())
        return super().get_context_data(
            page=self.paginate(selectors.dataset_list(org=self.org, q=q)),
            q=q,
            may_write=can(self.actor, "eval.write"),
            **kwargs,
        )

    def post(self, request, *args, **kwargs):
        self.require("eval.write")
        form = DatasetForm(request.POST)
        if form.is_valid():
            try:
                dataset = services.dataset_create(
                    actor=self.actor,
                    name=form.cleaned_data["name"],
                    description=form.cleaned_data["description"],
                    tags=_tags(form.cleaned_data["tags"]),
                )
            except InvalidInput as exc:
                form_error(form, exc)
            else:
                messages.success(request, f"Dataset {dataset.name} created.")
                return redirect("evals:dataset_detail", org_slug=self.org.slug, pk=dataset.pk)
        return self.render_to_response(self.get_context_data(form=form))


def _import_error_message(exc: InvalidInput) -> str:
    """`cases[3].input` -> 'Line 4: ...' for a person who uploaded a file."""
    field = exc.field or ""
    if field.startswith("cases[") and "]" in field:
        index = int(field[6 : field.index("]")])
        return f"Case {index + 1}: {exc.message}"
    return exc.message


class DatasetDetailView(OrgMixin, TemplateView):
    template_name = "evals/dataset_detail.html"
    action = "eval.view"

    def get_dataset(self):
        return selectors.dataset_get(org=self.org, pk=self.kwargs["pk"])

    def get_context_data(self, **kwargs):
        dataset = self.get_dataset()
        g = self.request.GET
        source = g.get("source", "") if g.get("source", "") in dict(CASE_SOURCE_CHOICES) else ""
        q = g.get("q", "").strip()
        page = self.paginate(
            selectors.dataset_cases(org=self.org, dataset=dataset, source_kind=source, q=q)
        )
        kwargs.setdefault("case_form", CaseForm())
        kwargs.setdefault("import_form", ImportForm())
        return super().get_context_data(
            dataset=dataset,
            page=page,
            total=selectors.dataset_cases(org=self.org, dataset=dataset).count(),
            f={"source": source, "q": q},
            filtered=bool(source or q),
            sources=CASE_SOURCE_CHOICES,
            runs=selectors.run_list(org=self.org, dataset=dataset)[:10],
            may_write=can(self.actor, "eval.write"),
            **kwargs,
        )

    def post(self, request, *args, **kwargs):
        dataset = self.get_dataset()
        self.require("eval.write")
        op = request.POST.get("op")
        if op == "case":
            form = CaseForm(request.POST)
            if not form.is_valid():
                return self.render_to_response(self.get_context_data(case_form=form))
            try:
                services.case_create(
                    actor=self.actor,
                    dataset=dataset,
                    input=form.cleaned_data["input"],
                    expected=form.cleaned_data["expected"],
                    criteria=form.cleaned_data["criteria"],
                    tags=_tags(form.cleaned_data["tags"]),
                )
            except InvalidInput as exc:
                form_error(form, exc)
                return self.render_to_response(self.get_context_data(case_form=form))
            messages.success(request, "Case added.")
        elif op == "import":
            form = ImportForm(request.POST, request.FILES)
            if not form.is_valid():
                return self.render_to_response(self.get_context_data(import_form=form))
            try:
                created = services.cases_bulk_create(
                    actor=self.actor, dataset=dataset, cases=form.cleaned_data["cases"]
                )
            except GovernanceError as exc:
                message = (
                    _import_error_message(exc) if isinstance(exc, InvalidInput) else exc.message
                )
                form.add_error(None, f"Nothing was imported. {message}")
                return self.render_to_response(self.get_context_data(import_form=form))
            messages.success(
                request, f"Imported {len(created)} case{'s' if len(created) != 1 else ''}."
            )
        else:
            raise InvalidInput("Unknown action.", field="op")
        return redirect("evals:dataset_detail", org_slug=self.org.slug, pk=dataset.pk)


class DatasetExportView(OrgMixin, TemplateView):
    action = "eval.view"

    def get(self, request, *args, **kwargs):
        dataset = selectors.dataset_get(org=self.org, pk=self.kwargs["pk"])
        cases = selectors.dataset_cases(org=self.org, dataset=dataset)

        def lines():
            for case in cases.iterator(chunk_size=2000):
                row = {"input": case.input, "expected": case.expected}
                if case.criteria:
                    row["criteria"] = case.criteria
                if case.tags:
                    row["tags"] = case.tags
                if case.source_kind != "manual":
                    row["source_kind"] = case.source_kind
                if case.source_label:
                    row["source_label"] = case.source_label
                if case.source_link:
                    row["source_link"] = case.source_link
                yield json.dumps(row, ensure_ascii=False) + "\n"

        response = StreamingHttpResponse(
            lines(), content_type="application/x-ndjson; charset=utf-8"
        )
        filename = f"{self.org.slug}-dataset-{dataset.pk}.jsonl"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


class PolicyView(OrgMixin, TemplateView):
    template_name = "evals/policies.html"
    action = "eval.view"

    def _datasets(self):
        return selectors.dataset_list(org=self.org)

    def get_context_data(self, **kwargs):
        services.policy_default(org=self.org)
        policies = list(selectors.policy_list(org=self.org))
        # A refused POST passes the policy it was editing; a GET names it with ?edit=.
        editing = kwargs.pop("editing", None)
        if editing is None and self.request.GET.get("edit"):
            editing = next((p for p in policies if str(p.pk) == self.request.GET["edit"]), None)
            if editing is None:
                raise NotFound("No such policy.")
        if "form" not in kwargs:
            initial = {"thresholds": "pass_rate >= 0.9", "min_cases": 1}
            if editing:
                initial = {
                    "name": editing.name,
                    "thresholds": thresholds_text(editing.thresholds),
                    "min_cases": editing.min_cases,
                    "required_dataset": editing.required_dataset_id or "",
                    "is_default": editing.is_default,
                }
            kwargs["form"] = PolicyForm(initial=initial, datasets=self._datasets())
        return super().get_context_data(
            policies=[(p, thresholds_text(p.thresholds)) for p in policies],
            editing=editing,
            may_manage=can(self.actor, "model.decide"),
            **kwargs,
        )

    def post(self, request, *args, **kwargs):
        self.require("model.decide")
        editing = None
        if request.POST.get("policy"):
            editing = selectors.policy_get(org=self.org, pk=request.POST["policy"])
        form = PolicyForm(request.POST, datasets=self._datasets())
        if form.is_valid():
            d = form.cleaned_data
            try:
                policy = services.policy_save(
                    actor=self.actor,
                    policy=editing,
                    name=d["name"],
                    thresholds=d["thresholds"],
                    min_cases=d["min_cases"],
                    required_dataset=d["required_dataset"] or None,
                    is_default=d["is_default"],
                )
            except InvalidInput as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, f"Policy {policy.name} saved.")
                return redirect("evals:policies", org_slug=self.org.slug)
        return self.render_to_response(self.get_context_data(form=form, editing=editing))
