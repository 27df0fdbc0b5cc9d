"""Prompt registry pages: list, prompt, version, diff, propose, review, deploy/rollback.
Thin: parse input, call one service or selector, render. OrgMixin turns service errors
into 404 / 403 / a message and a redirect."""

from __future__ import annotations

import json
from datetime import timedelta

from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.views.generic import TemplateView

from llmops.catalog.models import ModelVersion
from llmops.catalog.selectors import model_list
from llmops.common.errors import InvalidInput, NotFound
from llmops.common.forms import form_error
from llmops.evals.selectors import policy_list
from llmops.tenancy.mixins import OpDispatchMixin, OrgMixin
from llmops.tenancy.policy import can
from llmops.tenancy.selectors import team_list

from . import selectors, services
from .forms import DeployForm, OwnerForm, PromptForm, PromptSettingsForm, ProposeForm, ReviewForm
from .models import Approval, PromptVersion

LABEL_STATES = [
    ("", "Any label state"),
    ("production", "In production"),
    ("none", "No label"),
    ("in_review", "Has a version in review"),
    ("at_risk", "Model at risk"),
]


def _posted_id(request, field: str) -> int:
    """A posted row id; anything malformed is a 404, like an id that does not exist."""
    try:
        return int(request.POST.get(field, ""))
    except ValueError:
        raise NotFound("No such record.")


def _run_form(view, form, call, *, name: str = "form"):
    """Validate `form` and hand its cleaned data to `call` (one service call and what
    follows it); a service's 400 goes on the form field it names. An invalid or refused
    form is the page again, the form in the context as `name`."""
    if form.is_valid():
        try:
            return call(form.cleaned_data)
        except InvalidInput as exc:
            form_error(form, exc)
    return view.render_to_response(view.get_context_data(**{name: form}))


class PromptMixin(OrgMixin):
    action = "prompt.view"

    def get_prompt(self):
        if not hasattr(self, "_prompt"):
            self._prompt = selectors.prompt_get(org=self.org, name=self.kwargs["name"])
        return self._prompt

    def get_version(self, number=None):
        return selectors.version_get(
            org=self.org, prompt=self.get_prompt(), number=number or self.kwargs["number"]
        )

    def prompt_url(self, name: str | None = None) -> str:
        return reverse(
            "prompts:detail",
            kwargs={"org_slug": self.org.slug, "name": name or self.get_prompt().name},
        )

    def version_url(self, number: int) -> str:
        return reverse(
            "prompts:version",
            kwargs={"org_slug": self.org.slug, "name": self.get_prompt().name, "number": number},
        )


class PromptListView(OrgMixin, TemplateView):
    template_name = "prompts/list.html"
    action = "prompt.view"

    def get_template_names(self):
        # htmx filtering swaps only the results (search as you type).
        if getattr(self.request, "htmx", False):
            return ["prompts/list.html#results"]
        return [self.template_name]

    def get_context_data(self, **kwargs):
        g = self.request.GET
        filters = {
            "query": g.get("q", "").strip(),
            "tag": g.get("tag", "").strip(),
            "owner": g.get("owner", "").strip(),
            "label_state": g.get("state", ""),
            "needs_my_review": g.get("mine") == "1",
        }
        page = self.paginate(selectors.prompt_list(org=self.org, actor=self.actor, **filters))
        for prompt in page.object_list:
            prompt.risks = selectors.prompt_risks(prompt)
        return super().get_context_data(
            page=page,
            filters=filters,
            label_states=LABEL_STATES,
            review_count=selectors.versions_needing_review(actor=self.actor).count(),
            may_create=can(self.actor, "prompt.create"),
            **kwargs,
        )


class PromptCreateView(OrgMixin, TemplateView):
    template_name = "prompts/create.html"
    action = "prompt.create"

    def get_context_data(self, **kwargs):
        return super().get_context_data(form=kwargs.pop("form", None) or PromptForm(), **kwargs)

    def post(self, request, *args, **kwargs):
        def create(d):
            prompt = services.prompt_create(actor=self.actor, **d)
            messages.success(request, f"Prompt {prompt.name} created. Propose its first version.")
            return redirect("prompts:propose", org_slug=self.org.slug, name=prompt.name)

        return _run_form(self, PromptForm(request.POST), create)


class PromptDetailView(OpDispatchMixin, PromptMixin, TemplateView):
    template_name = "prompts/detail.html"

    def get_context_data(self, **kwargs):
        prompt = self.get_prompt()
        policies = policy_list(org=self.org)
        versions = self.paginate(selectors.prompt_versions(prompt=prompt), per_page=20)
        may_manage = can(self.actor, "prompt.manage", prompt)
        return super().get_context_data(
            prompt=prompt,
            labels=selectors.prompt_labels(prompt=prompt),
            page=versions,
            deployments=selectors.prompt_deployments(prompt=prompt)[:20],
            owners=selectors.prompt_owners(prompt=prompt),
            risks=selectors.prompt_risks(prompt),
            may_manage=may_manage,
            may_deploy=can(self.actor, "prompt.deploy", prompt),
            may_propose=can(self.actor, "prompt.propose", prompt),
            owner_form=kwargs.pop("owner_form", None) or OwnerForm(teams=team_list(org=self.org)),
            settings_form=kwargs.pop("settings_form", None)
            or PromptSettingsForm(
                policies=policies,
                initial={
                    "description": prompt.description,
                    "tags": ", ".join(prompt.tags),
                    "required_approvals": prompt.required_approvals,
                    "eval_policy": str(prompt.eval_policy_id or ""),
                },
            ),
            **kwargs,
        )

    # --- operations (each one service call) ---------------------------------------------

    ops = {
        "grant": "op_owners",
        "revoke": "op_owners",
        "protect": "op_protect",
        "settings": "op_settings",
    }

    def op_target(self):
        return self.get_prompt()

    def op_done(self, prompt):
        return redirect(self.prompt_url())

    def op_owners(self, prompt, p):
        form = OwnerForm(p, teams=team_list(org=self.org))
        grant = p.get("op") == "grant"

        def owners(d):
            (services.prompt_owner_grant if grant else services.prompt_owner_revoke)(
                actor=self.actor,
                prompt=prompt,
                username=d["username"].strip(),
                team_id=d["team"] or None,
                perms=form.perms() or None,
            )
            messages.success(self.request, "Owners updated.")

        return _run_form(self, form, owners, name="owner_form")

    def op_protect(self, prompt, p):
        label = prompt.labels.get(pk=_posted_id(self.request, "label"))
        protected = p.get("protected") == "1"
        services.label_set_protected(actor=self.actor, label=label, protected=protected)
        messages.success(
            self.request,
            f"Label {label.name} is now {'protected' if protected else 'unprotected'}.",
        )

    def op_settings(self, prompt, p):
        def save(d):
            services.prompt_update(
                actor=self.actor,
                prompt=prompt,
                description=d["description"],
                tags=d["tags"],
                required_approvals=d["required_approvals"],
                eval_policy=d["eval_policy"] or None,
            )
            messages.success(self.request, "Settings saved.")

        form = PromptSettingsForm(p, policies=policy_list(org=self.org))
        return _run_form(self, form, save, name="settings_form")


class VersionView(OpDispatchMixin, PromptMixin, TemplateView):
    template_name = "prompts/version.html"

    def get_context_data(self, **kwargs):
        version = self.get_version()
        prompt = version.prompt
        approvals = list(selectors.version_approvals(version=version))
        authors = selectors.version_authors(version=version)
        production = None
        try:
            from llmops.traces.selectors import rollup_summary

            production = rollup_summary(
                org=self.org,
                since=timezone.now() - timedelta(days=7),
                prompt_name=prompt.name,
                prompt_version=version.number,
            )
        except ImportError:  # traces not installed: the page says so
            production = None
        previous = prompt.versions.filter(number__lt=version.number).order_by("-number").first()
        allowed = services.version_allowed_actions(self.actor, version)
        for approval in approvals:
            approval.may_retract = services.retract_blocker(self.actor, approval, version) is None
        may_eval = can(self.actor, "eval.write")
        return super().get_context_data(
            prompt=prompt,
            version=version,
            authors=authors,
            approvals=approvals,
            open_approvals=[
                a for a in approvals if a.is_open and a.decision == Approval.Decision.APPROVE
            ],
            eval_links=selectors.version_eval_links(version=version),
            labels=selectors.version_labels(version=version),
            messages_pretty=json.dumps(version.messages, indent=2, ensure_ascii=False)
            if version.messages is not None
            else "",
            params_pretty=json.dumps(version.params, indent=2, sort_keys=True),
            tools_pretty=json.dumps(version.tools, indent=2, sort_keys=True),
            production=production,
            previous=previous,
            is_author=self.actor.user_id in {u.pk for u in authors},
            may_submit=allowed["submit"],
            may_withdraw=allowed["withdraw"],
            may_review=allowed["review"],
            may_eval=may_eval,
            runs=selectors.eval_runs_for_attach(org=self.org, version=version) if may_eval else [],
            **kwargs,
        )

    # --- operations (each one service call) ---------------------------------------------

    ops = {
        "submit": "op_submit",
        "withdraw": "op_withdraw",
        "retract": "op_retract",
        "attach": "op_attach",
    }

    def op_target(self):
        return self.get_version()

    def op_done(self, version):
        return redirect(self.version_url(version.number))

    def op_submit(self, version, p):
        services.version_submit(actor=self.actor, version=version)
        messages.success(self.request, f"v{version.number} is in review.")

    def op_withdraw(self, version, p):
        services.version_withdraw(actor=self.actor, version=version)
        messages.success(self.request, f"v{version.number} withdrawn.")

    def op_retract(self, version, p):
        approval = selectors.approval_get(
            org=self.org, version=version, approval_id=_posted_id(self.request, "approval")
        )
        services.approval_retract(actor=self.actor, approval=approval)
        messages.success(self.request, "Your decision was retracted.")

    def op_attach(self, version, p):
        try:
            services.version_attach_eval_run(actor=self.actor, version=version, run_id=p.get("run"))
        except InvalidInput as exc:
            messages.error(self.request, exc.message)
        else:
            messages.success(self.request, "Eval run linked.")


class ReviewView(PromptMixin, TemplateView):
    template_name = "prompts/review.html"
    action = "prompt.approve"

    def get_context_data(self, **kwargs):
        version = self.get_version()
        self.require("prompt.approve", version.prompt)
        return super().get_context_data(
            prompt=version.prompt,
            version=version,
            authors=selectors.version_authors(version=version),
            eval_links=selectors.version_eval_links(version=version),
            approvals=selectors.version_approvals(version=version),
            form=kwargs.pop("form", None) or ReviewForm(),
            may_break_glass=services.may_break_glass(self.actor, "prompt.approve", version.prompt),
            **kwargs,
        )

    def post(self, request, *args, **kwargs):
        version = self.get_version()

        def review(d):
            services.version_review(actor=self.actor, version=version, **d)
            version.refresh_from_db()
            messages.success(
                request,
                f"Decision recorded: {d['decision'].replace('_', ' ')}. "
                f"v{version.number} is {version.get_status_display().lower()}.",
            )
            return redirect(self.version_url(version.number))

        return _run_form(self, ReviewForm(request.POST), review)


class ProposeView(PromptMixin, TemplateView):
    template_name = "prompts/propose.html"
    action = "prompt.propose"

    def _models(self):
        return model_list(org=self.org).exclude(
            status__in=[ModelVersion.Status.REJECTED, ModelVersion.Status.RETIRED]
        )

    def get_context_data(self, **kwargs):
        prompt = self.get_prompt()
        form = kwargs.pop("form", None)
        latest = prompt.versions.select_related("model").order_by("-number").first()
        if form is None:
            initial = {"submit_for_review": True}
            if latest is not None:
                initial.update(
                    {
                        "kind": "messages" if latest.messages is not None else "template",
                        "template": latest.template,
                        "messages": json.dumps(latest.messages, indent=2, ensure_ascii=False)
                        if latest.messages is not None
                        else "",
                        "model": latest.model.model_id,
                        "params": json.dumps(latest.params, indent=2) if latest.params else "",
                        "tools": json.dumps(latest.tools, indent=2) if latest.tools else "",
                    }
                )
            form = ProposeForm(initial=initial, models=self._models())
        return super().get_context_data(prompt=prompt, form=form, latest=latest, **kwargs)

    def post(self, request, *args, **kwargs):
        prompt = self.get_prompt()

        def propose(d):
            is_chat = d["kind"] == "messages"
            version, created = services.version_create(
                actor=self.actor,
                prompt=prompt,
                model=d["model"],
                template=None if is_chat else d["template"],
                messages=d.get("messages_json") if is_chat else None,
                params=d["params"],
                tools=d["tools"],
                message=d["message"],
                submit=d["submit_for_review"],
                source=PromptVersion.Source.UI,
            )
            if created:
                messages.success(request, f"v{version.number} proposed ({version.status}).")
            else:
                messages.warning(
                    request, f"Nothing changed: identical to v{version.number}, no new version."
                )
            return redirect(self.version_url(version.number))

        return _run_form(self, ProposeForm(request.POST, models=self._models()), propose)


class DeployView(PromptMixin, TemplateView):
    template_name = "prompts/deploy.html"
    action = "prompt.deploy"

    def _versions(self):
        return (
            self.get_prompt()
            .versions.exclude(status__in=services.NEVER_DEPLOYED)
            .order_by("-number")
        )

    def get_context_data(self, **kwargs):
        prompt = self.get_prompt()
        self.require("prompt.deploy", prompt)
        form = kwargs.pop("form", None)
        if form is None:
            initial = {"label": self.request.GET.get("label", "production")}
            if self.request.GET.get("version"):
                initial["version"] = self.request.GET["version"]
            else:
                approved = (
                    prompt.versions.filter(status=PromptVersion.Status.APPROVED)
                    .order_by("-number")
                    .first()
                )
                if approved:
                    initial["version"] = str(approved.number)
            form = DeployForm(initial=initial, versions=self._versions())
        return super().get_context_data(
            prompt=prompt,
            form=form,
            labels=selectors.prompt_labels(prompt=prompt),
            may_break_glass=services.may_break_glass(self.actor, "prompt.deploy", prompt),
            **kwargs,
        )

    def post(self, request, *args, **kwargs):
        prompt = self.get_prompt()

        def deploy(d):
            version = self.get_version(number=int(d["version"]))
            deployment = services.label_deploy(
                actor=self.actor,
                prompt=prompt,
                label=d["label"].strip(),
                version=version,
                reason=d["reason"],
                break_glass_reason=d["break_glass_reason"],
            )
            if deployment is None:
                messages.info(request, f"'{d['label']}' already points at v{version.number}.")
            else:
                verb = "Rolled back" if deployment.is_rollback else "Deployed"
                messages.success(request, f"{verb}: '{d['label']}' now serves v{version.number}.")
            return redirect(self.prompt_url())

        return _run_form(self, DeployForm(request.POST, versions=self._versions()), deploy)


class DiffView(PromptMixin, TemplateView):
    template_name = "prompts/diff.html"

    def get_context_data(self, **kwargs):
        prompt = self.get_prompt()
        numbers = list(prompt.versions.order_by("-number").values_list("number", flat=True))
        g = self.request.GET
        try:
            b = int(g.get("b") or (numbers[0] if numbers else 0))
            a = int(g.get("a") or next((n for n in numbers if n < b), b))
        except ValueError:
            a = b = numbers[0] if numbers else 0
        diff = left = right = None
        if numbers:
            left = self.get_version(number=a)
            right = self.get_version(number=b)
            diff = selectors.version_side_by_side(left, right)
        return super().get_context_data(
            prompt=prompt, numbers=numbers, a=a, b=b, left=left, right=right, diff=diff, **kwargs
        )
