"""Delivery: signed webhooks to a local receiver, e-mail, retries, giving up, the stale sweep."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.conf import settings
from django.core import mail
from django.db import transaction
from django.test import override_settings
from django.utils import timezone
from standardwebhooks import Webhook, WebhookVerificationError

from llmops.notify import services, signing, tasks
from llmops.notify.models import Channel, DeliveryAttempt, Notification, Status
from llmops.notify.services import delivery, outbox

pytestmark = pytest.mark.django_db


def _webhook_row(world, url, **kw):
    endpoint, secret = services.webhook_create(actor=world.actor(), name="hook", url=url, **kw)
    with transaction.atomic():
        rows = services.notify(
            org=world.org,
            recipients=[],
            kind="prompt.approved",
            subject="support-reply v3 approved",
            body="Approved by admin.",
            link="/o/acme/prompts/support-reply/",
            payload={"prompt": "support-reply", "version": 3},
        )
    (row,) = rows
    return row, endpoint, secret


def test_webhook_is_signed_and_carries_the_idempotency_id(acme, receiver):
    row, endpoint, secret = _webhook_row(acme, receiver.url)
    outcome = services.notification_deliver(notification_id=row.pk)
    assert outcome.status == "delivered"
    (got,) = receiver.received
    headers = {k.lower(): v for k, v in got.headers.items()}
    assert headers["webhook-id"] == str(row.idempotency_key)
    assert headers["x-llmops-delivery"] == str(row.idempotency_key)
    assert headers["content-type"] == "application/json"
    # Standard Webhooks: the specification's own library verifies the delivery...
    assert Webhook(secret).verify(got.body, got.headers) == got.json
    with pytest.raises(WebhookVerificationError):
        Webhook(services.new_secret()).verify(got.body, got.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(got.body + b" ", got.headers)
    # ...and the deprecated X-Llmops-Signature still verifies for receivers written before.
    timestamp = headers["x-llmops-timestamp"]
    assert signing.verify(secret, timestamp, got.body, headers["x-llmops-signature"])
    assert not signing.verify("wrong-secret", timestamp, got.body, headers["x-llmops-signature"])
    assert not signing.verify(secret, timestamp, got.body + b" ", headers["x-llmops-signature"])
    body = got.json
    assert body["id"] == str(row.idempotency_key)
    assert body["kind"] == "prompt.approved"
    assert body["organization"] == "acme"
    assert body["payload"] == {"prompt": "support-reply", "version": 3}
    assert body["link"].endswith("/o/acme/prompts/support-reply/")
    assert body["link"].startswith("http")
    # Slack-compatible: a top-level `text` with subject, body and the absolute link.
    assert "support-reply v3 approved" in body["text"]
    assert "Approved by admin." in body["text"]
    assert body["link"] in body["text"]
    row.refresh_from_db()
    assert row.status == Status.DELIVERED and row.delivered_at and row.attempts == 1
    (attempt,) = DeliveryAttempt.objects.filter(notification=row)
    assert attempt.ok and attempt.status_code == 200 and attempt.error == ""


def test_slack_text_cannot_mention_or_link(acme, receiver):
    services.webhook_create(actor=acme.actor(), name="slack", url=receiver.url)
    with transaction.atomic():
        (row,) = services.notify(
            org=acme.org,
            recipients=[],
            kind="incident.opened",
            subject="<!channel> ping",
            body="see <https://evil.example|here> & more",
        )
    services.notification_deliver(notification_id=row.pk)
    body = receiver.received[0].json
    assert "<" not in body["text"] and ">" not in body["text"]
    assert "&lt;!channel&gt; ping" in body["text"] and "&amp; more" in body["text"]
    assert body["subject"] == "<!channel> ping"  # the raw field stays raw


def test_delivered_rows_are_never_sent_again(acme, receiver):
    row, _, _ = _webhook_row(acme, receiver.url)
    services.notification_deliver(notification_id=row.pk)
    outcome = services.notification_deliver(notification_id=row.pk)
    assert outcome.status == "skipped"
    assert len(receiver.received) == 1
    assert DeliveryAttempt.objects.filter(notification=row).count() == 1


def test_failure_records_the_attempt_and_schedules_a_retry(acme, receiver):
    receiver.statuses = [500, 200]
    row, _, _ = _webhook_row(acme, receiver.url)
    before = timezone.now()
    with mock.patch.object(delivery, "backoff_seconds", return_value=30):  # jitter aside
        outcome = services.notification_deliver(notification_id=row.pk)
    assert outcome.status == "retry"
    assert outcome.retry_in == 30
    row.refresh_from_db()
    assert row.status == Status.PENDING and row.attempts == 1
    assert "HTTP 500" in row.last_error
    assert row.next_attempt_at >= before + timedelta(seconds=outcome.retry_in)
    (attempt,) = DeliveryAttempt.objects.filter(notification=row)
    assert not attempt.ok and attempt.status_code == 500
    # A duplicate task before the retry is due does not cut the backoff short...
    assert services.notification_deliver(notification_id=row.pk).status == "skipped"
    assert len(receiver.received) == 1
    # ...the retry, once due, delivers with the same idempotency id.
    Notification.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now())
    assert services.notification_deliver(notification_id=row.pk).status == "delivered"
    ids = {r.json["id"] for r in receiver.received}
    assert ids == {str(row.idempotency_key)} and len(receiver.received) == 2


def test_task_retries_with_backoff_outside_eager_mode(acme, receiver):
    receiver.statuses = [503]
    row, _, _ = _webhook_row(acme, receiver.url)
    with (
        mock.patch.object(tasks.deliver, "retry", side_effect=RuntimeError("retry")) as retry,
        mock.patch.object(delivery, "backoff_seconds", return_value=17),
    ):
        tasks.deliver.push_request(is_eager=False)
        try:
            with pytest.raises(RuntimeError, match="retry"):
                tasks.deliver.run(row.pk)
        finally:
            tasks.deliver.pop_request()
    retry.assert_called_once_with(countdown=17)
    assert tasks.deliver.acks_late and tasks.deliver.reject_on_worker_lost


def test_backoff_ceiling_grows_exponentially_and_is_capped():
    ceilings = [services.backoff_ceiling(n) for n in range(1, 12)]
    assert ceilings[:3] == [30, 60, 120]
    assert max(ceilings) == 1800 and ceilings == sorted(ceilings)


def test_backoff_has_full_jitter_within_bounds():
    """Deliveries that failed together do not all come back together: each delay is
    drawn at random between 1 second and the attempt's ceiling (Celery's full jitter)."""
    for attempts in (1, 3, 10):
        delays = [services.backoff_seconds(attempts) for _ in range(200)]
        ceiling = services.backoff_ceiling(attempts)
        assert all(1 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 5  # not one fixed delay
    assert max(services.backoff_seconds(10) for _ in range(200)) > 900


def test_two_failed_deliveries_get_different_delays(acme, receiver):
    receiver.statuses = [503]
    services.webhook_create(actor=acme.actor(), name="hook", url=receiver.url)
    with transaction.atomic():
        rows = [
            services.notify(org=acme.org, recipients=[], kind="x.y", subject=f"s{i}", body="")[0]
            for i in range(6)
        ]
    delays = []
    for row in rows:
        outcome = services.notification_deliver(notification_id=row.pk)
        assert outcome.status == "retry"
        delays.append(outcome.retry_in)
        row.refresh_from_db()
        due_in = (row.next_attempt_at - timezone.now()).total_seconds()
        assert outcome.retry_in - 5 <= due_in <= outcome.retry_in
    assert all(1 <= d <= services.backoff_ceiling(1) for d in delays)
    assert len(set(delays)) > 1


@override_settings(
    LLMOPS={**settings.LLMOPS, "NOTIFY_MAX_ATTEMPTS": 3, "NOTIFY_BACKOFF_SECONDS": 60}
)
def test_max_attempts_then_failed(acme):
    # Nothing listens on port 9 (discard): connection refused every time.
    row, _, _ = _webhook_row(acme, "http://127.0.0.1:9/")
    outcomes = []
    for _ in range(4):
        outcomes.append(services.notification_deliver(notification_id=row.pk).status)
        Notification.objects.filter(pk=row.pk, status=Status.PENDING).update(
            next_attempt_at=timezone.now()  # the retry is due
        )
    assert outcomes == ["retry", "retry", "failed", "skipped"]
    row.refresh_from_db()
    assert row.status == Status.FAILED and row.attempts == 3 and row.next_attempt_at is None
    assert "connection failed" in row.last_error or "refused" in row.last_error
    assert DeliveryAttempt.objects.filter(notification=row, ok=False).count() == 3


def test_redirect_is_not_delivery(acme, receiver):
    receiver.statuses = [302]
    row, _, _ = _webhook_row(acme, receiver.url)
    assert services.notification_deliver(notification_id=row.pk).status == "retry"
    assert DeliveryAttempt.objects.get(notification=row).status_code == 302


def test_disabled_endpoint_rows_fail_without_sending(acme, receiver):
    row, endpoint, _ = _webhook_row(acme, receiver.url)
    services.webhook_set_active(actor=acme.actor(), endpoint=endpoint, active=False)
    assert services.notification_deliver(notification_id=row.pk).status == "failed"
    assert receiver.received == []
    row.refresh_from_db()
    assert row.status == Status.FAILED and "disabled" in row.last_error


def test_private_destinations_are_refused_unless_allowed(acme, receiver):
    from llmops.common.errors import InvalidInput

    row, _, _ = _webhook_row(acme, receiver.url)  # tests allow 127.0.0.1
    strict = {**settings.LLMOPS, "NOTIFY_ALLOW_PRIVATE_WEBHOOKS": False}
    with override_settings(LLMOPS=strict):
        # Refused for good at once: no retry can make a private address public.
        assert services.notification_deliver(notification_id=row.pk).status == "failed"
        for url in (
            "http://10.1.2.3/hook",
            "http://localhost:8000/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::ffff:127.0.0.1]/",
        ):
            with pytest.raises(InvalidInput):
                services.webhook_create(actor=acme.actor(), name="internal", url=url)
        # A public address passes creation.
        services.webhook_create(actor=acme.actor(), name="public", url="https://93.184.215.14/")
    assert receiver.received == []
    row.refresh_from_db()
    assert row.status == Status.FAILED and row.attempts == 1
    assert "non-public address" in row.last_error


def test_email_delivery(acme):
    mail.outbox.clear()
    with transaction.atomic():
        rows = services.notify(
            org=acme.org,
            recipients=[acme.users["maint1"]],
            kind="prompt.review_requested",
            subject="Review requested",
            body="Please review.",
            link="/o/acme/prompts/",
        )
    (row,) = [r for r in rows if r.channel == Channel.EMAIL]
    assert services.notification_deliver(notification_id=row.pk).status == "delivered"
    (message,) = mail.outbox
    assert message.to == [acme.users["maint1"].email]
    assert "Review requested" in message.subject
    assert "/o/acme/prompts/" in message.body
    assert message.extra_headers["X-Llmops-Delivery"] == str(row.idempotency_key)


def test_eager_commit_delivers_through_the_task(acme, receiver, django_capture_on_commit_callbacks):
    services.webhook_create(actor=acme.actor(), name="hook", url=receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            services.notify(
                org=acme.org, recipients=[], kind="incident.opened", subject="INC-1", body=""
            )
    assert len(receiver.received) == 1
    assert Notification.objects.get(channel=Channel.WEBHOOK).status == Status.DELIVERED


def _pending(world, **fields):
    row = Notification.objects.create(
        organization=world.org,
        recipient=world.users["maint1"],
        channel=Channel.EMAIL,
        kind="x.y",
        subject="s",
        **fields,
    )
    return row


def test_requeue_stale_picks_stale_rows_only(acme, django_capture_on_commit_callbacks):
    now = timezone.now()
    old = now - timedelta(seconds=600)
    stale = _pending(acme, next_attempt_at=old, created_at=old)
    stale_retry = _pending(acme, next_attempt_at=old, attempts=2, created_at=old)
    _pending(acme, next_attempt_at=now - timedelta(seconds=10))  # fresh
    _pending(acme, next_attempt_at=now + timedelta(seconds=600), created_at=old)  # backing off
    _pending(acme, next_attempt_at=old, attempts=8)  # at max attempts
    _pending(acme, next_attempt_at=old, status=Status.DELIVERED)
    _pending(acme, next_attempt_at=old, status=Status.FAILED)
    Notification.objects.create(
        organization=acme.org, channel=Channel.INBOX, kind="x", subject="s", created_at=old
    )
    with mock.patch("llmops.notify.tasks.deliver.delay") as delay:
        with django_capture_on_commit_callbacks(execute=True):
            ids = services.notification_requeue_stale()
    assert sorted(ids) == sorted([stale.pk, stale_retry.pk])
    assert sorted(c.args[0] for c in delay.call_args_list) == sorted(ids)
    # Re-queued rows are due now: the next sweep leaves them alone.
    stale.refresh_from_db()
    assert stale.next_attempt_at > now - timedelta(seconds=1)
    with mock.patch("llmops.notify.tasks.deliver.delay"):
        assert services.notification_requeue_stale() == []
    # The beat task is the same sweep (older_than=0 also takes the fresh row).
    with mock.patch("llmops.notify.tasks.deliver.delay"):
        assert tasks.requeue_stale.run(older_than=0) == 3


@pytest.mark.postgres
def test_delivery_locks_the_row_skipping_one_another_worker_holds(acme, receiver):
    """Two workers never send one row at once: the attempt locks it FOR UPDATE SKIP LOCKED
    (a worker that finds it locked skips it; the real-worker test shows the rest)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    row, _, _ = _webhook_row(acme, receiver.url)
    with CaptureQueriesContext(connection) as queries:
        services.notification_deliver(notification_id=row.pk)
    assert any("FOR UPDATE" in q["sql"] and "SKIP LOCKED" in q["sql"] for q in queries)


def test_purge_keeps_unread_and_pending_and_recent(acme, receiver):
    old = timezone.now() - timedelta(days=100)
    keep = [
        _pending(acme, created_at=old, next_attempt_at=old),  # still pending
        Notification.objects.create(  # unread
            organization=acme.org, channel=Channel.INBOX, kind="x", subject="s", created_at=old
        ),
        Notification.objects.create(  # read, but recent
            organization=acme.org,
            channel=Channel.INBOX,
            kind="x",
            subject="s",
            read_at=timezone.now(),
        ),
    ]
    row, _, _ = _webhook_row(acme, receiver.url)
    services.notification_deliver(notification_id=row.pk)
    Notification.objects.filter(pk=row.pk).update(created_at=old)
    gone = [
        row,
        Notification.objects.create(
            organization=acme.org,
            channel=Channel.INBOX,
            kind="x",
            subject="s",
            created_at=old,
            read_at=old,
        ),
        _pending(acme, created_at=old, status=Status.FAILED),
    ]
    assert tasks.purge.run() == 3
    remaining = set(Notification.objects.values_list("pk", flat=True))
    assert {n.pk for n in keep} <= remaining
    assert not {n.pk for n in gone} & remaining
    assert not DeliveryAttempt.objects.filter(notification_id=row.pk).exists()


@pytest.mark.postgres
def test_two_workers_never_send_one_row_at_once(transactional_db, receiver):
    """Worker A holds the row (its receiver stalls); worker B, and the stale sweep, skip it."""
    import threading

    from django.db import connections

    from tests.factories import make_org

    acme = make_org("acme")
    receiver.stall = threading.Event()
    with mock.patch.object(outbox, "_enqueue"):  # no eager delivery on commit here
        row, _, _ = _webhook_row(acme, receiver.url)
    results = {}

    def worker_a():
        try:
            results["a"] = services.notification_deliver(notification_id=row.pk).status
        finally:
            connections.close_all()

    thread = threading.Thread(target=worker_a)
    thread.start()
    try:
        assert receiver.first_seen.wait(20)
        assert services.notification_deliver(notification_id=row.pk).status == "skipped"
        with mock.patch("llmops.notify.tasks.deliver.delay") as delay:
            assert services.notification_requeue_stale(older_than=0) == []
        delay.assert_not_called()
    finally:
        receiver.stall.set()
        thread.join(20)
    assert results["a"] == "delivered"
    assert len(receiver.received) == 1
    assert DeliveryAttempt.objects.filter(notification=row).count() == 1
