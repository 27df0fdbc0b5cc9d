"""Incident pages: list, open (by hand or from a review), the incident page with its
actions, metrics, runbooks. Thin: parse, call a service or selector, render."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.views.generic import TemplateView

from llmops.common.errors import InvalidInput, NotFound
from llmops.common.forms import form_error
from llmops.tenancy import selectors as tenancy_selectors
from llmops.tenancy.mixins import OpDispatchMixin, OrgMixin
from llmops.tenancy.policy import can

from . import charts, selectors, services
from .forms import IncidentForm, RunbookForm, SeriousForm
from .models import (
    ENDED_STATUSES,
    OWASP_LLM_TOP10,
    POSTMORTEM_TEMPLATE,
    SERIOUS_REPORT_DAYS,
    Category,
    Evidence,
    Severity,
    Status,
)


def _int(value, default=None):
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


class IncidentListView(OrgMixin, TemplateView):
    template_name = "incidents/list.html"
    action = "incident.view"

    def get_context_data(self, **kwargs):
        g = self.request.GET
        f = {k: g.get(k, "").strip() for k in ("status", "severity", "category", "commander", "q")}
        if f["status"] not in [*Status.values, "open", ""]:
            f["status"] = ""
        if f["severity"] not in [*Severity.values, ""]:
            f["severity"] = ""
        if f["category"] not in [*Category.values, ""]:
            f["category"] = ""
        page = self.paginate(selectors.incident_list(org=self.org, **f))
        overdue = selectors.overdue_action_items(org=self.org)
        return super().get_context_data(
            page=page,
            f=f,
            statuses=Status.choices,
            severities=Severity.choices,
            categories=Category.choices,
            commanders=tenancy_selectors.staff_members(org=self.org),
            overdue=overdue[:20],
            overdue_count=overdue.count(),
            can_open=can(self.actor, "incident.open"),
            **kwargs,
        )


class IncidentCreateView(OrgMixin, TemplateView):
    template_name = "incidents/new.html"
    action = "incident.open"

    def get_context_data(self, **kwargs):
        kwargs.setdefault("form", IncidentForm())
        return super().get_context_data(**kwargs)

    def post(self, request, *args, **kwargs):
        form = IncidentForm(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form))
        try:
            incident = services.incident_open(actor=self.actor, **form.cleaned_data)
        except InvalidInput as exc:
            form_error(form, exc)
            return self.render_to_response(self.get_context_data(form=form))
        messages.success(request, f"{incident.ref} opened.")
        return redirect("incidents:detail", org_slug=self.org.slug, number=incident.number)


class IncidentFromReviewView(OrgMixin, TemplateView):
    """The reviewer screen's escalate button: a pre-filled form; the generation and the
    review become evidence."""

    template_name = "incidents/new.html"
    action = "incident.open"

    def _item(self):
        from reviews import selectors as review_selectors

        try:
            item = review_selectors.item_get(actor=self.actor, item_id=self.kwargs["item_id"])
        except NotFound:
            raise NotFound("No such review item.")
        return item, review_selectors.latest_review(item=item, user=self.request.user)

    def get_context_data(self, **kwargs):
        item, review = self._item()
        if "form" not in kwargs:
            generation = item.generation
            excerpt = (generation.output or "")[:1500]
            summary = (
                f"Escalated from review queue **{item.queue.name}** (item {item.pk}).\n\n"
                f"Generation `{generation.external_id}` (model `{generation.model_id}`"
                + (
                    f", prompt `{generation.prompt_name}` v{generation.prompt_version}"
                    if generation.prompt_name
                    else ""
                )
                + ").\n\nOutput excerpt:\n\n"
                + "\n".join(f"> {line}" for line in excerpt.splitlines())
            )
            if review is not None and review.comment:
                summary += f"\n\nReviewer comment: {review.comment}"
            kwargs["form"] = IncidentForm(
                initial={
                    "title": f"Bad output in {item.queue.name}"[:200],
                    "category": "hallucination",
                    "summary": summary,
                }
            )
        return super().get_context_data(item=item, review=review, **kwargs)

    def post(self, request, *args, **kwargs):
        item, review = self._item()
        form = IncidentForm(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form))
        data = form.cleaned_data
        try:
            incident = services.incident_open_from_review(
                actor=self.actor,
                title=data["title"],
                category=data["category"],
                severity=data["severity"],
                summary=data["summary"],
                generation=item.generation,
                review=review,
                review_extra={"queue": item.queue.name, "item": item.pk},
            )
        except InvalidInput as exc:
            form_error(form, exc)
            return self.render_to_response(self.get_context_data(form=form))
        messages.success(request, f"{incident.ref} opened from the review.")
        return redirect("incidents:detail", org_slug=self.org.slug, number=incident.number)


class IncidentDetailView(OpDispatchMixin, OrgMixin, TemplateView):
    template_name = "incidents/detail.html"
    action = "incident.view"

    def incident(self):
        return selectors.incident_get(org=self.org, number=self.kwargs["number"])

    def get_context_data(self, **kwargs):
        incident = kwargs.pop("incident", None) or self.incident()
        manage = can(self.actor, "incident.manage", incident)
        postmortem = selectors.postmortem_for(incident=incident)
        blockers = {
            to: services.transition_blockers(incident, to) for to in incident.allowed_transitions
        }
        ctx = {
            "incident": incident,
            "owasp": OWASP_LLM_TOP10.get(incident.category),
            "timeline": self.paginate(selectors.incident_timeline(incident=incident), 100),
            "checklists": selectors.incident_checklists(incident=incident),
            "evidence": list(incident.evidence.all()),
            "eval_links": list(incident.eval_cases.all()),
            "postmortem": postmortem,
            "postmortem_body": postmortem.body if postmortem else POSTMORTEM_TEMPLATE,
            "action_items": list(incident.action_items.select_related("owner")),
            "transitions": [
                {"to": to, "label": Status(to).label, "blockers": blockers[to]}
                for to in incident.allowed_transitions
            ],
            "can_manage": manage,
            "ended": incident.status in ENDED_STATUSES,
            "can_note": can(self.actor, "incident.open", incident),
            "can_break_glass": can(self.actor, "break_glass"),
            "severities": [s for s in Severity.choices],
            "categories": Category.choices,
            "serious_form": SeriousForm(
                initial={
                    "kind": incident.serious_kind or "other",
                    "aware_at": incident.aware_at,
                    "initial_report_at": incident.initial_report_at,
                    "final_report_at": incident.final_report_at,
                }
            ),
            "serious_days": SERIOUS_REPORT_DAYS,
            "now": timezone.now(),
            "evidence_kinds": [
                (Evidence.Kind.GENERATION, "Generation (external id)"),
                (Evidence.Kind.PROMPT_VERSION, "Prompt version (name@number)"),
                (Evidence.Kind.MODEL_VERSION, "Model version (model id)"),
            ],
        }
        if manage:
            ctx.update(self._action_choices())
        ctx.update(kwargs)
        return super().get_context_data(**ctx)

    def _action_choices(self) -> dict:
        from llmops.catalog.selectors import models_in_service
        from llmops.evals.selectors import dataset_list
        from prompts.selectors import deployed_labels

        return {
            "members": tenancy_selectors.staff_members(org=self.org),
            "all_members": tenancy_selectors.member_list(org=self.org),
            "datasets": dataset_list(org=self.org)[:200],
            "labels": deployed_labels(org=self.org),
            "models": models_in_service(org=self.org),
        }

    def get(self, request, *args, **kwargs):
        return self.render_to_response(self.get_context_data())

    def op_target(self):
        return self.incident()

    def op_name(self, request) -> str:
        ops = request.POST.getlist("op")
        return "preview" if "preview" in ops else (ops[0] if ops else "")

    def op_done(self, incident):
        return redirect("incidents:detail", org_slug=self.org.slug, number=incident.number)

    ops = {
        "transition": "op_transition",
        "update": "op_update",
        "command": "op_command",
        "note": "op_note",
        "step": "op_step",
        "evidence": "op_evidence",
        "eval_case": "op_eval_case",
        "link_eval_case": "op_link_eval_case",
        "postmortem": "op_postmortem",
        "preview": "op_preview",
        "action_item": "op_action_item",
        "action_item_update": "op_action_item_update",
        "serious": "op_serious",
        "rollback": "op_rollback",
        "suspend": "op_suspend",
    }

    # --- operations (each one service call) ---------------------------------------------

    def op_transition(self, incident, p):
        services.incident_transition(
            actor=self.actor,
            incident=incident,
            to=p.get("to", ""),
            note=p.get("note", ""),
            at=p.get("at") or None,
            duplicate_of=p.get("duplicate_of") or None,
            severity=p.get("severity") or None,
            severity_reason=p.get("severity_reason", ""),
        )
        messages.success(self.request, f"{incident.ref} is now {p.get('to')}.")

    def op_update(self, incident, p):
        kwargs = {
            k: p.get(k)
            for k in ("severity", "severity_reason", "category", "title", "summary")
            if k in p
        }
        for key in ("users_affected", "cost_impact_usd"):
            if key in p:
                kwargs[key] = p.get(key) or None
        if p.get("detected_at"):
            kwargs["detected_at"] = p.get("detected_at")
        services.incident_update(actor=self.actor, incident=incident, **kwargs)
        messages.success(self.request, "Saved.")

    def op_command(self, incident, p):
        user = (
            self.request.user
            if p.get("take")
            else tenancy_selectors.member_user(org=self.org, username=p.get("user", ""))
        )
        if user is None:
            raise InvalidInput("No such member.", field="user")
        services.incident_set_commander(actor=self.actor, incident=incident, user=user)
        messages.success(self.request, f"{user.get_username()} is the incident commander.")

    def op_note(self, incident, p):
        services.incident_note(actor=self.actor, incident=incident, note=p.get("note", ""))

    def op_step(self, incident, p):
        step = selectors.checklist_step_get(
            org=self.org, incident=incident, step_id=_int(p.get("step"))
        )
        services.checklist_step_set(actor=self.actor, step=step, done=p.get("done") == "1")

    def op_evidence(self, incident, p):
        kind = p.get("kind", "")
        obj = _resolve_evidence(self.org, kind, p.get("ref", "").strip())
        evidence = services.evidence_link(actor=self.actor, incident=incident, kind=kind, obj=obj)
        messages.success(self.request, f"Linked {evidence.label}.")

    def op_eval_case(self, incident, p):
        from llmops.evals.selectors import dataset_get

        try:
            dataset = dataset_get(org=self.org, pk=p.get("dataset"))
        except NotFound:
            raise InvalidInput("Choose a dataset.", field="dataset")
        link = services.incident_add_eval_case(
            actor=self.actor,
            incident=incident,
            dataset=dataset,
            input=p.get("input", ""),
            expected=p.get("expected") or None,
            criteria=p.get("criteria", ""),
        )
        messages.success(self.request, f"Case {link.eval_case_id} added to {link.dataset_name}.")

    def op_link_eval_case(self, incident, p):
        raw = p.get("case", "").strip().removeprefix("#")
        if not (raw.isascii() and raw.isdigit()):
            raise InvalidInput("Give the eval case's id (a number).", field="case")
        try:
            case = selectors.eval_case_get(org=self.org, case_id=raw)
        except NotFound:
            raise InvalidInput(f"No eval case {raw} in this organization.", field="case")
        link = services.incident_link_eval_case(
            actor=self.actor, incident=incident, case=case, note=p.get("note", "")
        )
        messages.success(self.request, f"Case {link.eval_case_id} in {link.dataset_name} linked.")

    def op_postmortem(self, incident, p):
        services.postmortem_save(actor=self.actor, incident=incident, body=p.get("body", ""))
        messages.success(self.request, "Postmortem saved.")

    def op_preview(self, incident, p):
        body = p.get("body", "")
        if self.request.htmx:
            return self.response_class(
                request=self.request,
                template="incidents/detail.html#pm_preview",
                context={"preview": body},
            )
        return self.render_to_response(
            self.get_context_data(incident=incident, preview=body, postmortem_body=body)
        )

    def _owner(self, p):
        """The named owner, who must be a member; no name means no owner yet."""
        if not p.get("owner"):
            return None
        owner = tenancy_selectors.member_user(org=self.org, username=p["owner"])
        if owner is None:
            raise InvalidInput(
                f"'{p['owner']}' is not a member of this organization.", field="owner"
            )
        return owner

    def op_action_item(self, incident, p):
        owner = self._owner(p)
        services.action_item_create(
            actor=self.actor,
            incident=incident,
            title=p.get("title", ""),
            owner=owner,
            due=p.get("due") or None,
            link=p.get("link", ""),
        )
        messages.success(self.request, "Action item added.")

    def op_action_item_update(self, incident, p):
        item = selectors.action_item_get(
            org=self.org, incident=incident, item_id=_int(p.get("item"))
        )
        kwargs = {}
        if "done" in p:
            kwargs["done"] = p.get("done") == "1"
        if "owner" in p:
            kwargs["owner"] = self._owner(p)
        services.action_item_update(actor=self.actor, item=item, **kwargs)

    def op_serious(self, incident, p):
        if p.get("unmark"):
            services.incident_mark_serious(actor=self.actor, incident=incident, serious=False)
            return
        form = SeriousForm(p)
        if not form.is_valid():
            raise InvalidInput("Check the serious-incident dates.", field="aware_at")
        services.incident_mark_serious(actor=self.actor, incident=incident, **form.cleaned_data)
        messages.success(self.request, "Regulatory clock set.")

    def op_rollback(self, incident, p):
        from prompts.selectors import label_get

        label = label_get(org=self.org, label_id=p.get("label"))
        if label is None:
            raise InvalidInput("Choose a prompt label.", field="label")
        services.incident_rollback_prompt(
            actor=self.actor,
            incident=incident,
            prompt=label.prompt,
            label=label.name,
            reason=p.get("reason", ""),
            break_glass_reason=p.get("break_glass_reason", "") or None,
        )
        messages.success(self.request, f"Rolled {label.prompt.name}@{label.name} back.")

    def op_suspend(self, incident, p):
        from llmops.catalog.selectors import model_get

        try:
            model = model_get(org=self.org, pk=p.get("model"))
        except NotFound:
            raise InvalidInput("Choose a model version.", field="model")
        services.incident_suspend_model(
            actor=self.actor, incident=incident, model=model, reason=p.get("reason", "")
        )
        messages.success(self.request, f"Suspended {model.model_id}.")


def _resolve_evidence(org, kind: str, ref: str):
    if not ref:
        raise InvalidInput("Name what to link.", field="ref")
    if kind == Evidence.Kind.GENERATION:
        from llmops.traces.selectors import generation_by_external_id

        try:
            obj = generation_by_external_id(org=org, external_id=ref)
        except NotFound:
            obj = None
    elif kind == Evidence.Kind.MODEL_VERSION:
        from llmops.catalog.selectors import model_by_model_id

        obj = model_by_model_id(org=org, model_id=ref)
    elif kind == Evidence.Kind.PROMPT_VERSION:
        from prompts.selectors import version_by_ref

        name, _, number = ref.rpartition("@")
        obj = version_by_ref(org=org, name=name, number=_int(number.lstrip("v")))
    else:
        raise InvalidInput("Choose what kind of evidence to link.", field="kind")
    if obj is None:
        raise InvalidInput(f"Nothing found for {ref!r}.", field="ref")
    return obj


class MetricsView(OrgMixin, TemplateView):
    template_name = "incidents/metrics.html"
    action = "incident.view"

    def get_context_data(self, **kwargs):
        weeks = _int(self.request.GET.get("weeks"), 12)
        weeks = min(max(weeks, 4), 52)
        m = selectors.incident_metrics(org=self.org, weeks=weeks)
        category_labels = dict(Category.choices)
        severity_labels = {k: k for k in Severity.values}
        severity_labels["pending"] = "pending"
        return super().get_context_data(
            m=m,
            weeks=weeks,
            week_choices=(4, 12, 26, 52),
            by_category=charts.stacked_bars(m["weeks"], m["by_category"], category_labels),
            by_severity=charts.stacked_bars(m["weeks"], m["by_severity"], severity_labels),
            mtta={k: charts.minutes_label(m["mtta"][k]) for k in ("median", "p90")},
            mttr={k: charts.minutes_label(m["mttr"][k]) for k in ("median", "p90")},
            **kwargs,
        )


class RunbookListView(OrgMixin, TemplateView):
    template_name = "incidents/runbooks.html"
    action = "runbook.view"

    def get_context_data(self, **kwargs):
        show_archived = self.request.GET.get("archived") == "1"
        runbooks = selectors.runbook_list(org=self.org, include_archived=show_archived)
        kwargs.setdefault("form", RunbookForm())
        return super().get_context_data(
            page=self.paginate(runbooks),
            show_archived=show_archived,
            can_manage=can(self.actor, "runbook.manage"),
            **kwargs,
        )

    def post(self, request, *args, **kwargs):
        self.require("runbook.manage")
        form = RunbookForm(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form))
        data = dict(form.cleaned_data)
        data.pop("change_note", None)
        try:
            version = services.runbook_create(actor=self.actor, **data)
        except InvalidInput as exc:
            form_error(form, exc)
            return self.render_to_response(self.get_context_data(form=form))
        messages.success(request, f"Runbook {version.title} created.")
        return redirect(
            "incidents:runbook_detail", org_slug=self.org.slug, runbook_id=version.runbook_id
        )


class RunbookDetailView(OpDispatchMixin, OrgMixin, TemplateView):
    template_name = "incidents/runbook_detail.html"
    action = "runbook.view"

    def runbook(self):
        return selectors.runbook_get(org=self.org, runbook_id=self.kwargs["runbook_id"])

    def get_context_data(self, **kwargs):
        runbook = self.runbook()
        versions = list(selectors.runbook_versions(runbook=runbook))
        wanted = _int(self.request.GET.get("v"))
        shown = next((v for v in versions if v.number == wanted), None) or runbook.latest
        if "form" not in kwargs and runbook.latest is not None:
            kwargs["form"] = RunbookForm(initial=RunbookForm.initial_from(runbook.latest))
        return super().get_context_data(
            runbook=runbook,
            versions=versions,
            shown=shown,
            can_manage=can(self.actor, "runbook.manage", runbook),
            **kwargs,
        )

    ops = {
        "reviewed": "op_reviewed",
        "archive": "op_archive",
        "unarchive": "op_archive",
        "version": "op_version",
    }

    def op_target(self):
        return self.runbook()

    def op_done(self, runbook):
        return redirect(
            reverse(
                "incidents:runbook_detail",
                kwargs={"org_slug": self.org.slug, "runbook_id": runbook.pk},
            )
        )

    def op_reviewed(self, runbook, p):
        services.runbook_mark_reviewed(actor=self.actor, runbook=runbook)
        messages.success(self.request, "Marked reviewed.")

    def op_archive(self, runbook, p):
        archived = p.get("op") == "archive"
        services.runbook_set_archived(actor=self.actor, runbook=runbook, archived=archived)
        messages.success(self.request, "Archived." if archived else "Restored.")

    def op_version(self, runbook, p):
        self.require("runbook.manage", runbook)
        form = RunbookForm(p)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form))
        try:
            version = services.runbook_version_create(
                actor=self.actor, runbook=runbook, **form.cleaned_data
            )
        except InvalidInput as exc:
            form_error(form, exc)
            return self.render_to_response(self.get_context_data(form=form))
        messages.success(self.request, f"Saved as version {version.number}.")
