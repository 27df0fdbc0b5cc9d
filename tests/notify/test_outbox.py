"""The outbox: rows are written with the caller's transaction and queued only after commit."""

from __future__ import annotations

from unittest import mock

import pytest
from django.conf import settings
from django.db import transaction
from django.test import override_settings

from llmops.notify import services
from llmops.notify.models import Channel, Notification, Status

pytestmark = pytest.mark.django_db


def _notify(world, recipients, **kw):
    args = {
        "org": world.org,
        "recipients": recipients,
        "kind": "prompt.review_requested",
        "subject": "Review requested",
        "body": "Please review v3.",
        "link": "/o/acme/prompts/x/",
    }
    args.update(kw)
    return services.notify(**args)


def test_rows_per_channel_and_queued_after_commit(acme, django_capture_on_commit_callbacks):
    hook, _ = services.webhook_create(actor=acme.actor(), name="all", url="https://x.example/h")
    services.webhook_create(
        actor=acme.actor(), name="incidents", url="https://y.example/h", event_filter="incident."
    )
    off, _ = services.webhook_create(
        actor=acme.actor(), name="off", url="https://z.example/h", active=False
    )
    acme.users["maint2"].email = ""
    acme.users["maint2"].save()
    with mock.patch("llmops.notify.tasks.deliver.delay") as delay:
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            with transaction.atomic():
                rows = _notify(acme, [acme.users["maint1"], acme.users["maint2"]])
                assert delay.call_count == 0  # nothing leaves before commit
        assert len(callbacks) == 1
    by_channel = {}
    for row in rows:
        by_channel.setdefault(row.channel, []).append(row)
    assert {r.recipient for r in by_channel[Channel.INBOX]} == {
        acme.users["maint1"],
        acme.users["maint2"],
    }
    assert all(r.status == Status.DELIVERED for r in by_channel[Channel.INBOX])
    # maint2 has no address: one e-mail row; only the matching active endpoint gets a row.
    assert [r.recipient for r in by_channel[Channel.EMAIL]] == [acme.users["maint1"]]
    assert [r.endpoint for r in by_channel[Channel.WEBHOOK]] == [hook]
    queued = sorted(call.args[0] for call in delay.call_args_list)
    assert queued == sorted(r.pk for r in rows if r.channel != Channel.INBOX)
    assert Notification.objects.filter(endpoint=off).count() == 0
    assert len({r.idempotency_key for r in rows}) == len(rows)


def test_rollback_leaves_no_rows_and_queues_nothing(acme, django_capture_on_commit_callbacks):
    services.webhook_create(actor=acme.actor(), name="all", url="https://x.example/h")
    before = Notification.objects.count()
    with mock.patch("llmops.notify.tasks.deliver.delay") as delay:
        with django_capture_on_commit_callbacks(execute=True):
            with pytest.raises(RuntimeError):
                with transaction.atomic():
                    _notify(acme, [acme.users["maint1"]])
                    assert Notification.objects.count() > before
                    raise RuntimeError("the caller's service failed")
    assert Notification.objects.count() == before
    delay.assert_not_called()


def test_must_run_inside_a_transaction(acme):
    outside = mock.Mock(in_atomic_block=False)
    with mock.patch(
        "llmops.notify.services.outbox.transaction.get_connection", return_value=outside
    ):
        with pytest.raises(RuntimeError, match="inside the caller's transaction"):
            _notify(acme, [acme.users["maint1"]])


def test_non_members_and_other_orgs_users_get_nothing(acme, globex):
    with transaction.atomic():
        rows = _notify(acme, [globex.users["maint1"], acme.users["viewer"]], email=False)
    assert [r.recipient for r in rows] == [acme.users["viewer"]]


@pytest.mark.parametrize(
    "link",
    [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example/x",
        "javascript:alert(1)",
        " JavaScript:alert(1)",
        "data:text/html,hi",
        "relative/x",
        "/o/acme/\x00x",
        "http://127.0.0.1:8000.evil.example/o/acme/",
    ],
)
def test_off_site_and_script_links_are_dropped(acme, link):
    """Links pass Django's url_has_allowed_host_and_scheme: another host or a script is
    dropped (the notification is still written, without a link)."""
    with transaction.atomic():
        rows = _notify(acme, [acme.users["maint1"]], link=link)
    assert rows and {r.link for r in rows} == {""}
    assert services.absolute_link(link) == ""


@override_settings(LLMOPS={**settings.LLMOPS, "BASE_URL": "https://llmops.example.com"})
def test_links_to_this_site_are_made_relative(acme):
    with transaction.atomic():
        rows = _notify(
            acme, [acme.users["maint1"]], link="https://llmops.example.com/o/acme/x/?a=1#b"
        )
    assert {r.link for r in rows} == {"/o/acme/x/?a=1#b"}
    assert services.absolute_link("/o/acme/") == "https://llmops.example.com/o/acme/"
    # Plain http to an https site is another origin: dropped.
    assert services.safe_link("http://llmops.example.com/o/acme/") == ""


def test_notify_admins_reaches_every_admin_only(acme):
    from llmops.tenancy.models import Membership

    Membership.objects.filter(organization=acme.org, user=acme.users["maint2"]).update(role="admin")
    with transaction.atomic():
        rows = services.notify_admins(
            org=acme.org, kind="break_glass.used", subject="Break-glass", body="why"
        )
    inbox = {r.recipient for r in rows if r.channel == Channel.INBOX}
    assert inbox == {acme.users["admin"], acme.users["maint2"]}


def test_webhooks_false_and_email_false(acme):
    services.webhook_create(actor=acme.actor(), name="all", url="https://x.example/h")
    with transaction.atomic():
        rows = _notify(acme, [acme.users["maint1"]], email=False, webhooks=False)
    assert [r.channel for r in rows] == [Channel.INBOX]


def test_mark_read_only_own(acme):
    with transaction.atomic():
        rows = _notify(acme, [acme.users["maint1"], acme.users["maint2"]], email=False)
    mine = next(r for r in rows if r.recipient == acme.users["maint1"])
    theirs = next(r for r in rows if r.recipient == acme.users["maint2"])
    from llmops.common.errors import NotFound

    with pytest.raises(NotFound):
        services.notification_mark_read(actor=acme.actor("maint1"), notification_id=theirs.pk)
    services.notification_mark_read(actor=acme.actor("maint1"), notification_id=mine.pk)
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.read_at is not None and theirs.read_at is None
    assert services.notification_mark_all_read(actor=acme.actor("maint2")) == 1
    theirs.refresh_from_db()
    assert theirs.read_at is not None
