"""The daily beat task sends each organization's audit chain head out of the database."""

from __future__ import annotations

import json
from io import StringIO

from django.conf import settings
from django.core import mail
from django.core.management import call_command

from llmops.audit.models import ChainHead
from llmops.audit.tasks import send_chain_heads
from llmops.notify.models import Channel, Notification


def test_the_task_is_scheduled_daily():
    (entry,) = [
        e
        for e in settings.CELERY_BEAT_SCHEDULE.values()
        if e["task"] == "llmops.audit.tasks.send_chain_heads"
    ]
    assert entry["schedule"].hour == {5} and entry["schedule"].minute == {0}


def test_heads_go_to_the_admins_by_email_and_match_the_chain(
    acme, globex, tmp_path, django_capture_on_commit_callbacks
):
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert send_chain_heads() == 2
    for world in (acme, globex):
        head = ChainHead.objects.get(organization=world.org)
        rows = Notification.objects.filter(organization=world.org, kind="audit.chain_heads")
        emails = rows.filter(channel=Channel.EMAIL)
        assert {n.recipient for n in emails} == {world.users["admin"]}, "admins only"
        (row,) = emails
        assert row.payload["heads"][world.org.slug]["seq"] == head.seq
        assert row.payload["heads"][world.org.slug]["hash"] == head.hash
        assert head.hash in row.body and "intact" in row.subject
    sent = [m for m in mail.outbox if "acme-admin@example.com" in m.to]
    assert sent and ChainHead.objects.get(organization=acme.org).hash in sent[0].body
    # What was sent is a heads file audit_verify --against accepts.
    payload = Notification.objects.filter(
        organization=acme.org, kind="audit.chain_heads", channel=Channel.EMAIL
    ).get()
    heads = tmp_path / "heads.json"
    heads.write_text(json.dumps(payload.payload))
    call_command("audit_verify", "--against", str(heads), stdout=StringIO())


def test_heads_go_to_the_organizations_webhooks(acme, globex):
    from llmops.notify.services import webhook_create

    endpoint, _ = webhook_create(
        actor=acme.actor(),
        name="soc",
        url="https://hooks.example.com/llmops",
        event_filter=["audit."],
    )
    send_chain_heads(org_id=acme.org.pk)
    (row,) = Notification.objects.filter(
        organization=acme.org, kind="audit.chain_heads", channel=Channel.WEBHOOK
    )
    assert row.endpoint_id == endpoint.pk
    head = ChainHead.objects.get(organization=acme.org)
    assert row.payload["heads"]["acme"]["hash"] == head.hash
    assert not Notification.objects.filter(organization=globex.org).exists()
