"""Inbox, bell and webhook admin pages."""

from __future__ import annotations

import pytest
from django.contrib.sessions.models import Session
from django.db import connection, transaction
from django.urls import reverse

from llmops.audit.models import AuditEvent
from llmops.notify import services
from llmops.notify.models import Channel, Notification, WebhookEndpoint

pytestmark = pytest.mark.django_db


def _inbox(world, who, subject, n=1):
    with transaction.atomic():
        for i in range(n):
            services.notify(
                org=world.org,
                recipients=[world.users[who]],
                kind="prompt.review_requested",
                subject=f"{subject}{i if n > 1 else ''}",
                body="body <b>text</b>",
                link=f"/o/{world.org.slug}/prompts/",
                email=False,
                webhooks=False,
            )


def url(world, name, **kw):
    return reverse(f"notify:{name}", kwargs={"org_slug": world.org.slug, **kw})


def test_inbox_shows_only_own_notifications_escaped(acme, globex, login):
    _inbox(acme, "maint1", "For maint1")
    _inbox(acme, "maint2", "For maint2")
    _inbox(globex, "maint1", "Globex thing")
    client = login(acme.users["maint1"])
    response = client.get(url(acme, "inbox"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "For maint1" in html
    assert "For maint2" not in html and "Globex thing" not in html
    assert "body &lt;b&gt;text&lt;/b&gt;" in html  # user text is escaped
    assert 'href="/o/acme/prompts/"' in html


def test_bell_counts_unread_in_this_org(acme, login):
    _inbox(acme, "maint1", "One", n=3)
    _inbox(acme, "maint2", "Other")
    client = login(acme.users["maint1"])
    html = client.get(reverse("tenancy:home", kwargs={"org_slug": "acme"})).content.decode()
    assert 'aria-label="Notifications: 3 unread"' in html
    assert '<span class="count">3</span>' in html


def test_bell_is_one_count_query(acme, login, django_assert_num_queries):
    from django.template import Context, Template
    from django.test import RequestFactory

    _inbox(acme, "maint1", "One", n=2)
    request = RequestFactory().get("/")
    request.user = acme.users["maint1"]
    template = Template("{% load notify_tags %}{% unread_count as n %}{{ n }}")
    with django_assert_num_queries(1):
        out = template.render(Context({"request": request, "org": acme.org}))
    assert out == "2"


def test_mark_one_read_without_js_and_with_htmx(acme, login):
    _inbox(acme, "maint1", "Note", n=2)
    first, second = Notification.objects.filter(
        recipient=acme.users["maint1"], channel=Channel.INBOX
    ).order_by("pk")
    client = login(acme.users["maint1"])
    response = client.post(url(acme, "inbox_read", notification_id=first.pk))
    assert response.status_code == 302 and response["Location"] == url(acme, "inbox")
    first.refresh_from_db()
    assert first.read_at is not None
    response = client.post(
        url(acme, "inbox_read", notification_id=second.pk), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert f'id="notification-{second.pk}"' in html
    assert "inbox-unread" not in html and "Mark read" not in html
    assert 'hx-swap-oob="true"' in html and 'aria-label="Notifications"' in html  # 0 unread
    assert "<html" not in html


def test_cannot_mark_someone_elses_notification(acme, login):
    _inbox(acme, "maint2", "Theirs")
    theirs = Notification.objects.get(recipient=acme.users["maint2"], channel=Channel.INBOX)
    client = login(acme.users["maint1"])
    assert client.post(url(acme, "inbox_read", notification_id=theirs.pk)).status_code == 404
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_mark_all_read_and_unread_filter(acme, login):
    _inbox(acme, "maint1", "Note", n=3)
    client = login(acme.users["maint1"])
    html = client.get(url(acme, "inbox") + "?filter=unread").content.decode()
    assert html.count('data-testid="notification"') == 3
    response = client.post(url(acme, "inbox_read_all"), {"next": "/o/acme/inbox/?filter=unread"})
    assert response.status_code == 302 and response["Location"] == "/o/acme/inbox/?filter=unread"
    html = client.get(url(acme, "inbox") + "?filter=unread").content.decode()
    assert "No unread notifications" in html
    html = client.get(url(acme, "inbox")).content.decode()
    assert html.count('data-testid="notification"') == 3
    # An off-site `next` is ignored.
    response = client.post(url(acme, "inbox_read_all"), {"next": "https://evil.example/"})
    assert response["Location"] == url(acme, "inbox")


def test_inbox_unread_first_paginated_and_query_count_flat(
    acme, login, django_assert_max_num_queries
):
    _inbox(acme, "maint1", "Note", n=30)
    oldest = Notification.objects.filter(recipient=acme.users["maint1"]).order_by("pk").first()
    services.notification_mark_all_read(actor=acme.actor("maint1"))
    Notification.objects.filter(pk=oldest.pk).update(read_at=None)
    client = login(acme.users["maint1"])
    with django_assert_max_num_queries(12):
        html = client.get(url(acme, "inbox")).content.decode()
    assert html.count('data-testid="notification"') == 25
    assert "Page 1 of 2" in html
    # The one unread (the oldest) comes first.
    assert html.index(f"notification-{oldest.pk}") < html.index(
        'data-testid="notification"', 1 + html.index(f"notification-{oldest.pk}")
    )


def test_empty_inbox(acme, login):
    html = login(acme.users["viewer"]).get(url(acme, "inbox")).content.decode()
    assert "No notifications yet" in html


def test_webhook_pages_are_admin_only(acme, login):
    endpoint, _ = services.webhook_create(actor=acme.actor(), name="Slack", url="https://s.example")
    client = login(acme.users["maint1"])
    assert client.get(url(acme, "webhooks")).status_code == 403
    assert (
        client.post(url(acme, "webhooks"), {"name": "x", "url": "https://x.example"}).status_code
        == 403
    )
    assert client.get(url(acme, "webhook_detail", endpoint_id=endpoint.pk)).status_code == 403
    response = client.post(url(acme, "webhook_detail", endpoint_id=endpoint.pk), {"op": "delete"})
    assert response.status_code == 403
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
    assert WebhookEndpoint.objects.count() == 1


def test_webhook_create_shows_secret_once_and_audits(acme, login):
    client = login(acme.users["admin"])
    assert "No webhook endpoints yet" in client.get(url(acme, "webhooks")).content.decode()
    response = client.post(
        url(acme, "webhooks"),
        {"name": "Slack", "url": "https://hooks.example/x", "event_filter": "prompt., incident."},
    )
    endpoint = WebhookEndpoint.objects.get(organization=acme.org)
    detail = url(acme, "webhook_detail", endpoint_id=endpoint.pk)
    assert endpoint.event_filter == ["incident.", "prompt."]
    assert endpoint.secret.startswith("whsec_")
    # Shown in the answer to the POST that created it, not parked in the session...
    assert response.status_code == 201
    html = response.content.decode()
    assert endpoint.secret in html and "shown only once" in html
    assert "no-store" in response["Cache-Control"]
    assert f'action="{detail}"' in html  # the page's forms post to the endpoint's page
    assert not any(endpoint.secret in str(s.get_decoded()) for s in Session.objects.all())
    # ...nor stored in clear, and never shown again.
    raw = WebhookEndpoint.objects.filter(pk=endpoint.pk).values_list("secret", flat=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM notify_webhookendpoint WHERE id = %s", [endpoint.pk])
        (stored,) = cursor.fetchone()
    assert endpoint.secret not in stored and stored.startswith("fernet:")
    assert list(raw) == [endpoint.secret]
    assert endpoint.secret not in client.get(detail).content.decode()
    assert endpoint.secret not in client.get(url(acme, "webhooks")).content.decode()
    event = AuditEvent.objects.get(organization=acme.org, action="webhook.created")
    assert event.target_label == "Slack" and endpoint.secret not in str(event.details)


def test_webhook_create_rejects_bad_input(acme, login):
    client = login(acme.users["admin"])
    response = client.post(url(acme, "webhooks"), {"name": "x", "url": "ftp://x.example/"})
    assert response.status_code == 200 and "errorlist" in response.content.decode()
    response = client.post(
        url(acme, "webhooks"), {"name": "x", "url": "https://x.example/", "event_filter": "a b"}
    )
    assert response.status_code == 200 and "is not a kind prefix" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_webhook_toggle_rotate_test_delete_are_audited(
    acme, login, receiver, django_capture_on_commit_callbacks
):
    endpoint, old_secret = services.webhook_create(
        actor=acme.actor(), name="Hook", url=receiver.url
    )
    client = login(acme.users["admin"])
    detail = url(acme, "webhook_detail", endpoint_id=endpoint.pk)
    client.post(detail, {"op": "disable"})
    endpoint.refresh_from_db()
    assert not endpoint.active
    client.post(detail, {"op": "enable"})
    response = client.post(detail, {"op": "rotate"})
    endpoint.refresh_from_db()
    assert endpoint.active and endpoint.secret != old_secret
    assert response.status_code == 200 and endpoint.secret in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    # The old secret keeps signing for the default grace period, and is never shown.
    assert endpoint.previous_secret == old_secret
    assert endpoint.signing_secrets() == [endpoint.secret, old_secret]
    html = client.get(detail).content.decode()
    assert endpoint.secret not in html and old_secret not in html
    assert "the previous secret also signs until" in html
    with django_capture_on_commit_callbacks(execute=True):
        client.post(detail, {"op": "test"})  # eager: delivered on commit to the receiver
    assert receiver.received and receiver.received[0].json["kind"] == "webhook.test"
    html = client.get(detail).content.decode()
    assert 'data-testid="attempts"' in html and "webhook.test" in html
    assert 'data-confirm="Delete Hook' in html
    response = client.post(detail, {"op": "delete"})
    assert response["Location"] == url(acme, "webhooks")
    assert not WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
    actions = list(
        AuditEvent.objects.filter(organization=acme.org, action__startswith="webhook.")
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions == [
        "webhook.created",
        "webhook.disabled",
        "webhook.enabled",
        "webhook.secret_rotated",
        "webhook.deleted",
    ]


def test_webhook_list_shows_counts_and_last_attempt(
    acme, login, receiver, django_assert_max_num_queries
):
    for i in range(3):
        services.webhook_create(actor=acme.actor(), name=f"Hook {i}", url=receiver.url)
    receiver.statuses = [500]
    endpoint = WebhookEndpoint.objects.get(name="Hook 0")
    services.webhook_send_test(actor=acme.actor(), endpoint=endpoint)
    row = Notification.objects.get(endpoint=endpoint)
    services.notification_deliver(notification_id=row.pk)
    client = login(acme.users["admin"])
    with django_assert_max_num_queries(12):
        html = client.get(url(acme, "webhooks")).content.decode()
    assert "Hook 2" in html and "badge-bad" in html and "500" in html


def test_retry_failed_deliveries(acme, login, receiver, django_capture_on_commit_callbacks):
    from llmops.notify.models import DeliveryAttempt, Status

    endpoint, _ = services.webhook_create(actor=acme.actor(), name="Hook", url=receiver.url)
    with transaction.atomic():
        (row,) = services.notify(
            org=acme.org, recipients=[], kind="incident.opened", subject="INC-2", body=""
        )
    Notification.objects.filter(pk=row.pk).update(
        status=Status.FAILED, attempts=8, last_error="HTTP 500"
    )
    client = login(acme.users["admin"])
    detail = url(acme, "webhook_detail", endpoint_id=endpoint.pk)
    html = client.get(detail).content.decode()
    assert 'data-testid="failed"' in html and "Retry failed deliveries" in html
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(detail, {"op": "retry_failed"})
    assert response.status_code == 302
    row.refresh_from_db()
    assert row.status == Status.DELIVERED and row.attempts == 1
    assert receiver.received[0].json["id"] == str(row.idempotency_key)
    assert DeliveryAttempt.objects.filter(notification=row, ok=True).count() == 1
    event = AuditEvent.objects.get(organization=acme.org, action="webhook.deliveries_retried")
    assert event.details == {"count": 1}
    # Nothing failed any more: nothing to retry, no audit event.
    assert services.webhook_retry_failed(actor=acme.actor(), endpoint=endpoint) == 0
    assert not client.get(detail).content.decode().count('data-testid="failed"')


def test_webhook_detail_query_count_is_flat(acme, login, receiver, django_assert_max_num_queries):
    from llmops.notify.models import Status

    endpoint, _ = services.webhook_create(actor=acme.actor(), name="Hook", url=receiver.url)
    receiver.statuses = [500]
    for _ in range(30):
        row = services.webhook_send_test(actor=acme.actor(), endpoint=endpoint)
        services.notification_deliver(notification_id=row.pk)
    Notification.objects.filter(endpoint=endpoint).update(status=Status.FAILED)
    client = login(acme.users["admin"])
    with django_assert_max_num_queries(14):
        html = client.get(url(acme, "webhook_detail", endpoint_id=endpoint.pk)).content.decode()
    assert html.count("badge-bad") == 25  # one page of attempts
    assert "The latest 10 of 30." in html


def test_unread_link_marks_read_via_script_hook(acme, login):
    _inbox(acme, "maint1", "Linked")
    n = Notification.objects.get(recipient=acme.users["maint1"], channel=Channel.INBOX)
    html = login(acme.users["maint1"]).get(url(acme, "inbox")).content.decode()
    assert f'data-mark-read="{url(acme, "inbox_read", notification_id=n.pk)}"' in html
    assert "js/notify.js" in html and 'nonce="' in html


def test_webhook_page_unknown_op_is_a_400_naming_it_and_changes_nothing(acme, login):
    endpoint, _ = services.webhook_create(
        actor=acme.actor("admin"), name="ops", url="https://hooks.example.com/ops"
    )
    events = AuditEvent.objects.count()
    client = login(acme.users["admin"])
    for data in ({"op": "launch_rockets"}, {}):
        response = client.post(url(acme, "webhook_detail", endpoint_id=endpoint.pk), data)
        assert response.status_code == 400
        body = response.content.decode()
        assert 'data-testid="unknown-op"' in body
        assert (data.get("op") or "named no action") in body and "retry_failed" in body
    endpoint.refresh_from_db()
    assert endpoint.active and AuditEvent.objects.count() == events
