"""Notification pages: the user's inbox, and the organization's webhook endpoints (admins)."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.generic import TemplateView, View

from llmops.common.errors import InvalidInput
from llmops.tenancy.mixins import OrgMixin
from llmops.tenancy.throttling import Throttled, check_actor

from . import selectors, services
from .forms import WebhookForm
from .models import Status


class InboxView(OrgMixin, TemplateView):
    template_name = "notify/inbox.html"
    action = "org.view"

    def get_context_data(self, **kwargs):
        unread_only = self.request.GET.get("filter") == "unread"
        page = self.paginate(
            selectors.inbox_list(org=self.org, user=self.request.user, unread_only=unread_only)
        )
        return super().get_context_data(
            page=page,
            unread_only=unread_only,
            unread=selectors.unread_count(org=self.org, user=self.request.user),
            **kwargs,
        )


def _back(request, org) -> str:
    nxt = request.POST.get("next", "")
    if nxt and url_has_allowed_host_and_scheme(
        nxt, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return nxt
    return reverse("notify:inbox", kwargs={"org_slug": org.slug})


class InboxReadView(OrgMixin, View):
    """POST: mark one of my notifications read. htmx gets the updated item and the bell."""

    action = "org.view"

    def post(self, request, *args, **kwargs):
        notification = services.notification_mark_read(
            actor=self.actor, notification_id=self.kwargs["notification_id"]
        )
        if request.htmx:
            return render(
                request,
                "notify/inbox.html#read_response",
                {"n": notification, "org": self.org, "actor": self.actor},
            )
        return redirect(_back(request, self.org))


class InboxReadAllView(OrgMixin, View):
    action = "org.view"

    def post(self, request, *args, **kwargs):
        count = services.notification_mark_all_read(actor=self.actor)
        messages.success(request, f"Marked {count} notification{'s' if count != 1 else ''} read.")
        return redirect(_back(request, self.org))


class WebhooksView(OrgMixin, TemplateView):
    template_name = "notify/webhooks.html"
    action = "webhook.manage"

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            page=self.paginate(selectors.webhook_list(org=self.org)),
            form=kwargs.pop("form", None) or WebhookForm(),
            **kwargs,
        )

    def post(self, request, *args, **kwargs):
        form = WebhookForm(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form))
        try:
            endpoint, secret = services.webhook_create(actor=self.actor, **form.cleaned_data)
        except InvalidInput as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            return self.render_to_response(self.get_context_data(form=form))
        request.session["new_webhook_secret"] = {"endpoint": endpoint.pk, "secret": secret}
        messages.success(request, f"Webhook {endpoint.name} created.")
        return redirect("notify:webhook_detail", org_slug=self.org.slug, endpoint_id=endpoint.pk)


class WebhookDetailView(OrgMixin, TemplateView):
    template_name = "notify/webhook_detail.html"
    action = "webhook.manage"

    def _endpoint(self):
        return selectors.webhook_get(org=self.org, endpoint_id=self.kwargs["endpoint_id"])

    def get_context_data(self, **kwargs):
        endpoint = self._endpoint()
        shown = self.request.session.get("new_webhook_secret")
        new_secret = None
        if shown and shown.get("endpoint") == endpoint.pk:
            new_secret = self.request.session.pop("new_webhook_secret")["secret"]
        outbox = selectors.endpoint_outbox(org=self.org, endpoint=endpoint)
        return super().get_context_data(
            endpoint=endpoint,
            new_secret=new_secret,
            page=self.paginate(selectors.endpoint_attempts(org=self.org, endpoint=endpoint)),
            pending=outbox.filter(status=Status.PENDING).count(),
            failed=outbox.filter(status=Status.FAILED)[:10],
            failed_count=outbox.filter(status=Status.FAILED).count(),
            **kwargs,
        )

    def post(self, request, *args, **kwargs):
        endpoint = self._endpoint()
        op = request.POST.get("op")
        back = redirect("notify:webhook_detail", org_slug=self.org.slug, endpoint_id=endpoint.pk)
        if op == "delete":
            services.webhook_delete(actor=self.actor, endpoint=endpoint)
            messages.success(request, f"Webhook {endpoint.name} deleted.")
            return redirect("notify:webhooks", org_slug=self.org.slug)
        if op in ("enable", "disable"):
            services.webhook_set_active(actor=self.actor, endpoint=endpoint, active=op == "enable")
            messages.success(request, f"Webhook {endpoint.name} {op}d.")
        elif op == "rotate":
            _, secret = services.webhook_rotate_secret(actor=self.actor, endpoint=endpoint)
            request.session["new_webhook_secret"] = {"endpoint": endpoint.pk, "secret": secret}
            messages.success(request, "New secret generated; the old one no longer verifies.")
        elif op == "retry_failed":
            count = services.webhook_retry_failed(actor=self.actor, endpoint=endpoint)
            messages.success(
                request, f"{count} failed deliver{'y' if count == 1 else 'ies'} queued again."
            )
        elif op == "test":
            try:
                check_actor(self.actor, "webhook_test")  # README "Limits"
            except Throttled as exc:
                messages.error(request, str(exc.detail))
                return back
            services.webhook_send_test(actor=self.actor, endpoint=endpoint)
            messages.success(request, "Test delivery queued; its attempt appears below.")
        else:
            messages.error(request, "Unknown action.")
        return back
