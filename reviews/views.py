"""Review pages: queue list, settings (rubric builder, rules with preview, reviewers,
backfill), stats, adjudication, export, and the keyboard-first reviewer screen. Thin:
parse, call one service or selector, render (htmx gets the page's named partial)."""

from __future__ import annotations

import json
from datetime import timedelta

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.views.generic import TemplateView, View

from llmops.common.errors import GovernanceError, InvalidInput
from llmops.evals.selectors import dataset_list
from llmops.tenancy import guardian
from llmops.tenancy.mixins import OpDispatchMixin, OrgMixin
from llmops.tenancy.policy import can
from llmops.tenancy.selectors import member_list, team_list

from . import rubric as rubric_mod
from . import selectors, services
from .display import present, questions_for
from .forms import BackfillForm, GrantForm, QueueForm, RubricForm, RuleForm
from .models import Assignment, SamplingRule


def escalate_url(org_slug: str, item) -> str:
    """The incidents app's 'open from review' page, once it exists; '' hides the button."""
    for kwargs, query in (
        ({"org_slug": org_slug, "item_id": item.pk}, ""),
        ({"org_slug": org_slug}, f"?review_item={item.pk}"),
    ):
        try:
            return reverse("incidents:from_review", kwargs=kwargs) + query
        except NoReverseMatch:
            continue
    return ""


class QueueMixin(OrgMixin):
    action = "queue.view"

    def get_queue(self):
        if not hasattr(self, "_queue"):
            self._queue = selectors.queue_get(actor=self.actor, queue_id=self.kwargs["queue_id"])
        return self._queue

    def queue_context(self, queue) -> dict:
        return {
            "queue": queue,
            "can_manage": can(self.actor, "queue.manage", queue),
            "can_review": can(self.actor, "queue.review", queue),
            "can_adjudicate": can(self.actor, "queue.adjudicate", queue),
        }


class QueueListView(OrgMixin, TemplateView):
    template_name = "reviews/list.html"
    action = "queue.view"

    def get_context_data(self, **kwargs):
        queues = list(selectors.queue_list(actor=self.actor))
        guardian.prefetch_grants(self.actor.user, queues, cache=self.actor._cache)
        progress = selectors.queue_progress(actor=self.actor, queues=queues)
        rows = [
            {
                "queue": q,
                "p": progress[q.pk],
                "can_review": can(self.actor, "queue.review", q),
                "can_manage": can(self.actor, "queue.manage", q),
            }
            for q in queues
        ]
        can_create = can(self.actor, "queue.manage")
        return super().get_context_data(
            rows=rows,
            can_create=can_create,
            form=kwargs.pop("form", None)
            or (QueueForm(datasets=self._datasets()) if can_create else None),
            **kwargs,
        )

    def _datasets(self):
        return list(dataset_list(org=self.org))

    def post(self, request, *args, **kwargs):
        self.require("queue.manage")
        form = QueueForm(request.POST, datasets=self._datasets())
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form))
        try:
            queue = services.queue_create(actor=self.actor, **form.cleaned_data)
        except InvalidInput as exc:
            form.add_error(None, exc.message)
            return self.render_to_response(self.get_context_data(form=form))
        messages.success(request, f"Queue {queue.name} created. Add sampling rules and reviewers.")
        return redirect("reviews:settings", org_slug=self.org.slug, queue_id=queue.pk)


class QueueSettingsView(OpDispatchMixin, QueueMixin, TemplateView):
    template_name = "reviews/settings.html"
    ops = {
        name: f"op_{name}"
        for name in (
            "update",
            "rubric",
            "question_add",
            "question_remove",
            "question_up",
            "rule_add",
            "rule_preview",
            "rule_delete",
            "grant",
            "revoke",
            "backfill",
        )
    }

    def get(self, request, *args, **kwargs):
        queue = self.get_queue()
        self.require("queue.manage", queue)
        if request.htmx and request.GET.get("part") == "backfill":
            job = selectors.latest_backfill(queue=queue)
            return self.render_partial("backfill", job=job)
        return super().get(request, *args, **kwargs)

    def render_partial(self, name: str, **ctx):
        self.template_name = f"reviews/settings.html#{name}"
        return self.render_to_response(self.get_context_data(partial=True, **ctx))

    def get_context_data(self, partial=False, **kwargs):
        queue = self.get_queue()
        ctx = self.queue_context(queue)
        if partial:
            return super().get_context_data(**ctx, **kwargs)
        users, teams = selectors.queue_reviewers(queue=queue)
        datasets = list(dataset_list(org=self.org))
        preview = selectors.sampling_preview(queue=queue)
        rules = selectors.queue_rules(queue=queue)
        for rule in rules:
            rule.preview = preview["per_rule"].get(rule.pk, 0)
        now = timezone.now()
        return super().get_context_data(
            **ctx,
            queue_form=kwargs.pop("queue_form", None)
            or QueueForm(
                datasets=datasets,
                initial={
                    "name": queue.name,
                    "instructions": queue.instructions,
                    "reviewers_per_item": queue.reviewers_per_item,
                    "lease_minutes": queue.lease_minutes,
                    "sla_hours": queue.sla_hours,
                    "eval_dataset": queue.eval_dataset_id or "",
                    "active": queue.active,
                },
            ),
            rubric_form=kwargs.pop("rubric_form", None)
            or RubricForm(initial={"rubric": json.dumps(queue.rubric, indent=2)}),
            questions=questions_for(queue.rubric),
            question_types=rubric_mod.TYPES,
            rules=rules,
            preview=preview,
            rule_form=kwargs.pop("rule_form", None) or RuleForm(),
            reviewer_users=users,
            reviewer_teams=teams,
            members=member_list(org=self.org),
            teams=team_list(org=self.org),
            backfill_form=kwargs.pop("backfill_form", None)
            or BackfillForm(
                initial={
                    "since": (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
                    "until": now.strftime("%Y-%m-%dT%H:%M"),
                }
            ),
            job=selectors.latest_backfill(queue=queue),
            **kwargs,
        )

    def op_target(self):
        queue = self.get_queue()
        self.require("queue.manage", queue)
        return queue

    def op_done(self, queue):
        return redirect("reviews:settings", org_slug=self.org.slug, queue_id=queue.pk)

    def post(self, request, *args, **kwargs):
        try:
            return super().post(request, *args, **kwargs)
        except InvalidInput as exc:
            messages.error(request, exc.message)
            return self.op_done(self.get_queue())

    def op_update(self, queue, post):
        datasets = list(dataset_list(org=self.org))
        form = QueueForm(post, datasets=datasets)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(queue_form=form))
        services.queue_update(actor=self.actor, queue=queue, **form.cleaned_data)
        messages.success(self.request, "Queue settings saved.")

    def op_rubric(self, queue, post):
        form = RubricForm(post)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(rubric_form=form))
        services.queue_update(actor=self.actor, queue=queue, rubric=form.cleaned_data["rubric"])
        messages.success(self.request, "Rubric saved.")

    def _save_questions(self, queue, questions, message):
        services.queue_update(actor=self.actor, queue=queue, rubric={"questions": questions})
        messages.success(self.request, message)

    def op_question_add(self, queue, post):
        q = {
            "key": post.get("key", "").strip(),
            "label": post.get("label", "").strip(),
            "type": post.get("type", ""),
            "required": post.get("required") == "on",
        }
        if q["type"] in ("choice", "multi_choice"):
            q["options"] = [o.strip() for o in post.get("options", "").splitlines() if o.strip()]
        if q["type"] == "scale":
            try:
                q["min"], q["max"] = int(post.get("min") or 1), int(post.get("max") or 5)
            except ValueError:
                raise InvalidInput("Scale min and max are whole numbers.", field="min")
            labels = {}
            for line in post.get("labels", "").splitlines():
                if "=" in line:
                    k, v = line.split("=", 1)
                    labels[k.strip()] = v.strip()
            q["labels"] = labels
        questions = list(queue.rubric.get("questions", [])) + [q]
        self._save_questions(queue, questions, f"Question '{q['key']}' added.")

    def op_question_remove(self, queue, post):
        key = post.get("key")
        questions = [q for q in queue.rubric.get("questions", []) if q["key"] != key]
        self._save_questions(queue, questions, f"Question '{key}' removed.")

    def op_question_up(self, queue, post):
        key = post.get("key")
        questions = list(queue.rubric.get("questions", []))
        index = next((i for i, q in enumerate(questions) if q["key"] == key), None)
        if index:
            questions[index - 1], questions[index] = questions[index], questions[index - 1]
            self._save_questions(queue, questions, f"Question '{key}' moved up.")

    def op_rule_add(self, queue, post):
        form = RuleForm(post)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(rule_form=form))
        services.rule_create(
            actor=self.actor,
            queue=queue,
            rate=form.cleaned_data["rate"],
            filters=form.filters(),
            name=form.cleaned_data["name"],
            priority=form.cleaned_data["priority"] or 0,
        )
        messages.success(self.request, "Sampling rule added.")

    def op_rule_preview(self, queue, post):
        form = RuleForm(post)
        result = None
        if form.is_valid():
            from . import sampling

            rate, filters = sampling.validate_rule(
                rate=form.cleaned_data["rate"], filters=form.filters()
            )
            rule = SamplingRule(pk=0, queue=queue, rate=rate, filters=filters)
            result = selectors.sampling_preview(queue=queue, rules=[rule])
        if self.request.htmx:
            return self.render_partial("rule_preview", rule_preview=result, rule_form=form)
        messages.info(
            self.request,
            f"This rule would have sampled {result['sampled']} of {result['scanned']} "
            "generations in the last 24 h."
            if result
            else "Fix the rule to preview it.",
        )

    def op_rule_delete(self, queue, post):
        rule = selectors.rule_get(queue=queue, rule_id=post.get("rule"))
        if rule is None:
            raise Http404("No such rule.")
        services.rule_delete(actor=self.actor, rule=rule)
        messages.success(self.request, "Sampling rule removed.")

    def _grant_args(self, post):
        form = GrantForm(post)
        if not form.is_valid():
            raise InvalidInput("Choose a member or a team.")
        return {"username": form.cleaned_data["username"], "team_id": form.cleaned_data["team"]}

    def op_grant(self, queue, post):
        label = services.reviewer_grant(actor=self.actor, queue=queue, **self._grant_args(post))
        messages.success(self.request, f"{label} may now review this queue.")

    def op_revoke(self, queue, post):
        label = services.reviewer_revoke(actor=self.actor, queue=queue, **self._grant_args(post))
        messages.success(self.request, f"{label} no longer reviews this queue.")

    def op_backfill(self, queue, post):
        form = BackfillForm(post)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(backfill_form=form))
        job = services.backfill_start(
            actor=self.actor,
            queue=queue,
            since=form.cleaned_data["since"],
            until=form.cleaned_data["until"],
        )
        messages.success(self.request, f"Backfill started (job {job.pk}).")


class QueueStatsView(QueueMixin, TemplateView):
    template_name = "reviews/stats.html"

    def get_context_data(self, **kwargs):
        queue = self.get_queue()
        progress = selectors.queue_progress(actor=self.actor, queues=[queue])[queue.pk]
        return super().get_context_data(
            **self.queue_context(queue),
            p=progress,
            stats=selectors.queue_stats(queue=queue),
            overdue=selectors.overdue_items(queue=queue)[:50],
            **kwargs,
        )


class AdjudicationView(QueueMixin, TemplateView):
    template_name = "reviews/adjudication.html"

    def get_context_data(self, **kwargs):
        queue = self.get_queue()
        self.require("queue.adjudicate", queue)
        page = self.paginate(selectors.adjudication_list(queue=queue), per_page=10)
        rows = []
        for item in page.object_list:
            reviews = list(item.reviews.all())
            rows.append(
                {
                    "item": item,
                    "reviews": reviews,
                    "reviewed_by_me": any(r.reviewer_id == self.actor.user_id for r in reviews),
                    "questions": questions_for(queue.rubric),
                    "output": item.generation.output,
                    "prefix": f"adj{item.pk}-",
                }
            )
        return super().get_context_data(**self.queue_context(queue), page=page, rows=rows, **kwargs)

    def post(self, request, *args, **kwargs):
        queue = self.get_queue()
        self.require("queue.adjudicate", queue)
        item = selectors.item_get(actor=self.actor, item_id=request.POST.get("item"), queue=queue)
        answers = rubric_mod.answers_from_form(queue.rubric, request.POST)
        try:
            services.item_adjudicate(
                actor=self.actor,
                item=item,
                answers=answers,
                comment=request.POST.get("comment", ""),
            )
            messages.success(request, f"Final answer recorded for item {item.pk}.")
        except InvalidInput as exc:
            messages.error(request, f"Item {item.pk}: {exc.message}")
        return redirect("reviews:adjudication", org_slug=self.org.slug, queue_id=queue.pk)


class ExportView(QueueMixin, View):
    def get(self, request, *args, **kwargs):
        from .api import export_response

        queue = self.get_queue()
        self.require("queue.manage", queue)
        return export_response(self.actor, queue, request.GET.get("format", "jsonl"))


class ClaimView(QueueMixin, View):
    """POST: claim the next item (or get back the one held) and open it."""

    def post(self, request, *args, **kwargs):
        queue = self.get_queue()
        self.require("queue.review", queue)
        assignment = services.item_claim(actor=self.actor, queue=queue)
        if assignment is None:
            messages.info(request, f"Nothing left for you in {queue.name}. Thank you!")
            return redirect("reviews:list", org_slug=self.org.slug)
        return redirect(
            "reviews:item", org_slug=self.org.slug, queue_id=queue.pk, item_id=assignment.item_id
        )


class ItemView(OpDispatchMixin, QueueMixin, TemplateView):
    """The reviewer screen. Submitting or skipping claims the next item and, for htmx,
    answers with the screen partial of that item (and its URL pushed to history)."""

    template_name = "reviews/item.html"
    ops = {op: f"op_{op}" for op in ("submit", "skip", "release", "evals")}

    def get_item(self):
        return selectors.item_get(
            actor=self.actor, item_id=self.kwargs["item_id"], queue=self.get_queue()
        )

    def get_context_data(self, item=None, **kwargs):
        queue = self.get_queue()
        item = item or self.get_item()
        assignment = selectors.active_assignment(actor=self.actor, item=item)
        working = assignment is not None and assignment.state == Assignment.State.ACTIVE
        reviews = selectors.visible_reviews(actor=self.actor, item=item)
        mine = next((r for r in reviews if r.reviewer_id == self.actor.user_id), None)
        progress = selectors.queue_progress(actor=self.actor, queues=[queue])[queue.pk]
        answers = kwargs.pop("answers", None)
        return super().get_context_data(
            **self.queue_context(queue),
            item=item,
            gen=item.generation,
            shown=present(item.generation),
            assignment=assignment,
            working=working,
            reviews=reviews,
            others=[r for r in reviews if mine is None or r.pk != mine.pk],
            mine=mine,
            questions=questions_for(
                queue.rubric, answers if answers is not None else (mine.answers if mine else None)
            ),
            p=progress,
            overdue=item.state == "open"
            and item.due_at is not None
            and item.due_at < timezone.now(),
            escalate_url=escalate_url(self.org.slug, item),
            item_url=reverse(
                "reviews:item",
                kwargs={"org_slug": self.org.slug, "queue_id": queue.pk, "item_id": item.pk},
            ),
            **kwargs,
        )

    def _render(self, status=200, **ctx):
        template = "reviews/item.html#screen" if self.request.htmx else "reviews/item.html"
        response = self.response_class(
            request=self.request,
            template=[template],
            context=self.get_context_data(**ctx),
            using=self.template_engine,
            status=status,
        )
        return response

    def op_target(self):
        self._target = self.get_item()
        return self._target

    def op_name(self, request) -> str:
        return request.POST.get("op", "submit")

    def post(self, request, *args, **kwargs):
        try:
            return super().post(request, *args, **kwargs)
        except GovernanceError as exc:
            if exc.status == 404:
                raise Http404(exc.message)
            if exc.status == 403:
                raise PermissionDenied(exc.message)
            item = getattr(self, "_target", None) or self.get_item()
            return self._render(status=200 if request.htmx else 409, item=item, error=exc.message)

    def op_submit(self, item, post):
        answers = rubric_mod.answers_from_form(self.get_queue().rubric, post)
        try:
            services.review_submit(
                actor=self.actor,
                item=item,
                answers=answers,
                corrected_output=post.get("corrected_output", ""),
                comment=post.get("comment", ""),
            )
        except InvalidInput as exc:
            return self._render(
                status=200 if self.request.htmx else 400,
                item=item,
                error=exc.message,
                answers=answers,
                draft=post,
            )
        return self._next(self.get_queue(), f"Review of item {item.pk} saved.")

    def op_skip(self, item, post):
        services.item_skip(actor=self.actor, item=item, reason=post.get("reason", ""))
        return self._next(self.get_queue(), f"Item {item.pk} skipped.")

    def op_release(self, item, post):
        services.item_release(actor=self.actor, item=item)
        messages.info(self.request, f"Item {item.pk} released.")
        return self._go(reverse("reviews:list", kwargs={"org_slug": self.org.slug}))

    def op_evals(self, item, post):
        link = reverse(
            "reviews:item",
            kwargs={"org_slug": self.org.slug, "queue_id": item.queue_id, "item_id": item.pk},
        )
        case = services.item_add_to_evals(actor=self.actor, item=item, link=link)
        return self._render(item=item, notice=f"Added to eval dataset as case {case.pk}.")

    def _go(self, url: str):
        if self.request.htmx:
            response = self.response_class(
                request=self.request, template=["reviews/empty.html"], context={}
            )
            response["HX-Redirect"] = url
            return response
        return redirect(url)

    def _next(self, queue, notice: str):
        assignment = services.item_claim(actor=self.actor, queue=queue)
        if assignment is None:
            messages.success(self.request, f"{notice} Nothing left for you in {queue.name}.")
            return self._go(reverse("reviews:list", kwargs={"org_slug": self.org.slug}))
        url = reverse(
            "reviews:item",
            kwargs={"org_slug": self.org.slug, "queue_id": queue.pk, "item_id": assignment.item_id},
        )
        if not self.request.htmx:
            messages.success(self.request, notice)
            return redirect(url)
        nxt = selectors.item_get(actor=self.actor, item_id=assignment.item_id, queue=queue)
        self.kwargs["item_id"] = nxt.pk
        response = self._render(item=nxt, notice=notice)
        response["HX-Push-Url"] = url
        return response
