"""Notification pages: the user's inbox, and the organization's webhook endpoints (admins).

A new or rotated webhook secret is shown in the response to the POST that made it (never
stored in the session, never shown again; the response is not cached)."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.generic import TemplateView, View

from llmops.common.errors import InvalidInput
from llmops.common.forms import form_error
from llmops.tenancy.mixins import OpDispatchMixin, OrgMixin
from llmops.tenancy.throttling import Throttled, check_actor

from . import selectors, services, signing
from .forms import RotateForm, WebhookForm
from .models import Status, WebhookEndpoint


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
            form_error(form, exc)
            return self.render_to_response(self.get_context_data(form=form))
        messages.success(request, f"Webhook {endpoint.name} created.")
        return _secret_response(self, endpoint, secret, status=201)


def _secret_response(view, endpoint, secret: str, *, status: int = 200):
    """The endpoint's page with its new secret, as the answer to the POST that made it."""
    context = WebhookDetailView.detail_context(view, endpoint, new_secret=secret)
    response = render(view.request, WebhookDetailView.template_name, context, status=status)
    add_never_cache_headers(response)
    return response


class WebhookDetailView(OpDispatchMixin, OrgMixin, TemplateView):
    template_name = "notify/webhook_detail.html"
    action = "webhook.manage"

    def _endpoint(self):
        try:
            return selectors.webhook_get(org=self.org, endpoint_id=self.kwargs["endpoint_id"])
        except WebhookEndpoint.DoesNotExist:
            raise Http404("No such webhook endpoint.")

    @staticmethod
    def detail_context(view, endpoint, *, new_secret=None, rotate_form=None) -> dict:
        outbox = selectors.endpoint_outbox(org=view.org, endpoint=endpoint)
        return OrgMixin.get_context_data(
            view,
            view=view,
            endpoint=endpoint,
            new_secret=new_secret,
            rotate_form=rotate_form or RotateForm(),
            max_rotation_hours=services.MAX_ROTATION_HOURS,
            default_rotation_hours=services.rotation_hours(),
            secret_is_standard=signing.is_standard_secret(endpoint.secret),
            now=timezone.now(),
            detail_url=reverse(
                "notify:webhook_detail",
                kwargs={"org_slug": view.org.slug, "endpoint_id": endpoint.pk},
            ),
            page=view.paginate(selectors.endpoint_attempts(org=view.org, endpoint=endpoint)),
            pending=outbox.filter(status=Status.PENDING).count(),
            failed=outbox.filter(status=Status.FAILED)[:10],
            failed_count=outbox.filter(status=Status.FAILED).count(),
        )

    def get_context_data(self, **kwargs):
        return self.detail_context(self, self._endpoint())

    ops = {
        "delete": "op_delete",
        "enable": "op_enable",
        "disable": "op_disable",
        "rotate": "op_rotate",
        "retry_failed": "op_retry_failed",
        "test": "op_test",
    }

    def op_target(self):
        return self._endpoint()

    def op_done(self, endpoint):
        return redirect("notify:webhook_detail", org_slug=self.org.slug, endpoint_id=endpoint.pk)

    def op_delete(self, endpoint, p):
        services.webhook_delete(actor=self.actor, endpoint=endpoint)
        messages.success(self.request, f"Webhook {endpoint.name} deleted.")
        return redirect("notify:webhooks", org_slug=self.org.slug)

    def op_enable(self, endpoint, p):
        services.webhook_set_active(actor=self.actor, endpoint=endpoint, active=True)
        messages.success(self.request, f"Webhook {endpoint.name} enabled.")

    def op_disable(self, endpoint, p):
        services.webhook_set_active(actor=self.actor, endpoint=endpoint, active=False)
        messages.success(self.request, f"Webhook {endpoint.name} disabled.")

    def _rotate_refused(self, endpoint, form):
        context = self.detail_context(self, endpoint, rotate_form=form)
        return render(self.request, self.template_name, context, status=400)

    def op_rotate(self, endpoint, p):
        form = RotateForm(p)
        if not form.is_valid():
            return self._rotate_refused(endpoint, form)
        try:
            endpoint, secret = services.webhook_rotate_secret(
                actor=self.actor,
                endpoint=endpoint,
                keep_old_hours=form.cleaned_data["keep_old_hours"],
            )
        except InvalidInput as exc:
            form_error(form, exc)
            return self._rotate_refused(endpoint, form)
        if endpoint.previous_secret_until:
            until = endpoint.previous_secret_until.strftime("%Y-%m-%d %H:%M UTC")
            messages.success(
                self.request, f"New secret generated; the old one also signs until {until}."
            )
        else:
            messages.success(self.request, "New secret generated; the old one no longer signs.")
        return _secret_response(self, endpoint, secret)

    def op_retry_failed(self, endpoint, p):
        count = services.webhook_retry_failed(actor=self.actor, endpoint=endpoint)
        messages.success(
            self.request, f"{count} failed deliver{'y' if count == 1 else 'ies'} queued again."
        )

    def op_test(self, endpoint, p):
        try:
            check_actor(self.actor, "webhook_test")  # README "Limits"
        except Throttled as exc:
            messages.error(self.request, str(exc.detail))
            return None
        services.webhook_send_test(actor=self.actor, endpoint=endpoint)
        messages.success(self.request, "Test delivery queued; its attempt appears below.")
