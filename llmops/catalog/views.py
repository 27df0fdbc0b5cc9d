"""Catalog pages: model list (badges, filters, countdown), model detail (evidence,
decision history, prices, usage), propose form, decision and lifecycle forms for admins."""

from __future__ import annotations

from django.apps import apps
from django.contrib import messages
from django.shortcuts import redirect
from django.views.generic import TemplateView

from llmops.common.errors import InvalidInput
from llmops.common.forms import form_error
from llmops.evals import selectors as eval_selectors
from llmops.tenancy.mixins import OpDispatchMixin, OrgMixin
from llmops.tenancy.policy import can

from . import selectors, services
from .forms import LifecycleForm, ProposeForm
from .models import ModelVersion, Provider


def _lifecycle(model: ModelVersion) -> dict:
    """Countdown figures for the templates."""
    dep = selectors.days_until(model.deprecation_date)
    ret = selectors.days_until(model.retirement_date)
    soon = None
    for kind, left, day in (
        ("deprecation", dep, model.deprecation_date),
        ("retirement", ret, model.retirement_date),
    ):
        if left is not None and left >= 0 and (soon is None or left < soon["days"]):
            soon = {"kind": kind, "days": left, "date": day, "urgent": left <= 30}
    return {"deprecation_days": dep, "retirement_days": ret, "next": soon}


class ModelListView(OrgMixin, TemplateView):
    template_name = "catalog/list.html"
    action = "model.view"

    def get_context_data(self, **kwargs):
        g = self.request.GET
        status = g.get("status", "") if g.get("status", "") in ModelVersion.Status.values else ""
        provider = g.get("provider", "") if g.get("provider", "") in Provider.values else ""
        q = g.get("q", "").strip()
        page = self.paginate(
            selectors.model_list(org=self.org, status=status, provider=provider, q=q)
        )
        rows = [
            {"m": m, "life": _lifecycle(m), "check": selectors.check_model_version(m)}
            for m in page.object_list
        ]
        return super().get_context_data(
            page=page,
            rows=rows,
            f={"status": status, "provider": provider, "q": q},
            statuses=ModelVersion.Status.choices,
            providers=Provider.choices,
            counts=selectors.model_counts_by_status(org=self.org),
            filtered=bool(status or provider or q),
            **kwargs,
        )


class ProposeView(OrgMixin, TemplateView):
    template_name = "catalog/propose.html"
    action = "model.propose"

    def get_context_data(self, **kwargs):
        kwargs.setdefault("form", ProposeForm())
        return super().get_context_data(**kwargs)

    def post(self, request, *args, **kwargs):
        form = ProposeForm(request.POST)
        if form.is_valid():
            try:
                model = services.model_propose(actor=self.actor, **form.service_fields())
            except InvalidInput as exc:
                form_error(form, exc)
            else:
                flag = (
                    " Its id looks floating (not pinned to a dated version)."
                    if model.is_floating
                    else ""
                )
                messages.success(
                    request, f"Proposed {model.model_id}. An admin decides on it.{flag}"
                )
                return redirect("catalog:detail", org_slug=self.org.slug, pk=model.pk)
        return self.render_to_response(self.get_context_data(form=form))


def model_usage_sections(actor, model) -> list[dict]:
    """What still uses this model, from apps above the catalog: each app may define
    `model_usage(self, actor, model) -> list[dict(title, rows=[{label, href, detail}], empty)]`
    on its AppConfig (prompts: versions pinning it; traces: recent traffic)."""
    sections = []
    for config in apps.get_app_configs():
        hook = getattr(config, "model_usage", None)
        if hook:
            sections.extend(hook(actor, model) or [])
    return sections


class ModelDetailView(OpDispatchMixin, OrgMixin, TemplateView):
    template_name = "catalog/detail.html"
    action = "model.view"

    def get_model(self):
        return selectors.model_get(org=self.org, pk=self.kwargs["pk"])

    def get_context_data(self, **kwargs):
        model = self.get_model()
        may_decide = can(self.actor, "model.decide", model)
        evidence = list(selectors.model_evidence(org=self.org, model=model)[:50])
        attached = {e.eval_run_id for e in evidence}
        runs = []
        if can(self.actor, "model.propose", model):
            runs = [r for r in eval_selectors.run_list(org=self.org)[:30] if r.pk not in attached]
        lifecycle_form = kwargs.pop("lifecycle_form", None) or LifecycleForm(
            initial={
                "deprecation_date": model.deprecation_date,
                "retirement_date": model.retirement_date,
                "lifecycle_source_url": model.lifecycle_source_url,
                "input_price_per_mtok": model.input_price_per_mtok,
                "output_price_per_mtok": model.output_price_per_mtok,
                "replacement": model.replacement_id or "",
            },
            replacements=selectors.model_list(org=self.org).exclude(pk=model.pk),
        )
        own_proposal = (
            model.requested_by_id is not None and model.requested_by_id == self.actor.user_id
        )
        return super().get_context_data(
            model=model,
            life=_lifecycle(model),
            check=selectors.check_model_version(model),
            evidence=evidence,
            has_passing=any(e.passed for e in evidence),
            decisions=selectors.model_decisions(org=self.org, model=model)[:100],
            may_decide=may_decide,
            may_break_glass=can(self.actor, "break_glass"),
            own_proposal=own_proposal,
            transitions=[
                to for to, sources in services.TRANSITIONS.items() if model.status in sources
            ],
            attach_runs=runs,
            lifecycle_form=lifecycle_form,
            usage=model_usage_sections(self.actor, model),
            **kwargs,
        )

    def op_target(self):
        return self.get_model()

    def op_done(self, model):
        return redirect("catalog:detail", org_slug=self.org.slug, pk=model.pk)

    ops = {
        "decide": "op_decide",
        "transition": "op_transition",
        "attach": "op_attach",
        "flag": "op_flag",
        "lifecycle": "op_lifecycle",
    }

    def _moved(self, model):
        messages.success(self.request, f"{model.model_id} is now {model.status}.")

    def op_decide(self, model, p):
        self._moved(
            services.model_decide(
                actor=self.actor,
                model=model,
                decision=p.get("decision", ""),
                comment=p.get("comment", ""),
                break_glass_reason=p.get("break_glass_reason", "").strip() or None,
            )
        )

    def op_transition(self, model, p):
        self._moved(
            services.model_transition(
                actor=self.actor,
                model=model,
                to=p.get("to", ""),
                reason=p.get("reason", ""),
                break_glass_reason=p.get("break_glass_reason", "").strip() or None,
            )
        )

    def op_attach(self, model, p):
        run = eval_selectors.run_get(org=self.org, pk=p.get("run"))
        evidence = services.model_attach_evidence(actor=self.actor, model=model, run=run)
        outcome = "passes" if evidence.passed else "does not pass"
        messages.success(
            self.request, f"Run {run.pk} attached as evidence; it {outcome} the default policy."
        )

    def op_flag(self, model, p):
        services.model_set_floating(
            actor=self.actor,
            model=model,
            is_floating=p.get("is_floating") == "1",
            reason=p.get("reason", ""),
        )
        messages.success(self.request, "Floating flag updated.")

    def op_lifecycle(self, model, p):
        self.require("model.decide", model)
        form = LifecycleForm(
            p, replacements=selectors.model_list(org=self.org).exclude(pk=model.pk)
        )
        if form.is_valid():
            try:
                services.model_update(actor=self.actor, model=model, **form.cleaned_data)
            except InvalidInput as exc:
                form_error(form, exc)
        if form.errors:
            return self.render_to_response(self.get_context_data(lifecycle_form=form))
        messages.success(self.request, "Lifecycle details saved.")
