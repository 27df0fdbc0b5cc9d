"""Beat task: each organization's audit chain head, sent out of the database every day.

The admins get it by e-mail (and in their inbox), and the organization's webhooks whose
filter matches `audit.` get it as a payload in the `audit_verify --heads-out` format, so
a rewind (newest events deleted, chain head moved back) shows with
`manage.py audit_verify --against <a kept file>` even when the database agrees with
itself."""

from __future__ import annotations

import json

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from llmops.notify.services import notify_admins
from llmops.tenancy.models import Organization

from .verify import heads_document, verify_org

KIND = "audit.chain_heads"


@shared_task(name="llmops.audit.tasks.send_chain_heads")
def send_chain_heads(org_id: int | None = None) -> int:
    """Verify each chain and send its head to the organization's admins and webhooks;
    returns the number of organizations sent."""
    orgs = Organization.objects.all() if org_id is None else Organization.objects.filter(pk=org_id)
    sent = 0
    for org in orgs.order_by("pk"):
        report = verify_org(org.pk)
        document = heads_document({org.slug: report}, timezone.now().isoformat())
        state = "intact" if report.ok else f"BROKEN at event #{report.broken_seq}"
        body = (
            f"The audit chain of {org.name} is {state}: {report.events} events, head "
            f"#{report.head_seq} {report.head_hash or '-'}.\n\n"
            + (f"{report.problem}\n\n" if not report.ok else "")
            + "Keep this message outside llmops. Saved as a file, these heads let "
            "`manage.py audit_verify --against FILE` show whether events were deleted or "
            "the chain rewritten since:\n\n" + json.dumps(document, indent=2)
        )
        with transaction.atomic():
            notify_admins(
                org=org,
                kind=KIND,
                subject=f"Audit chain head of {org.name}: #{report.head_seq} ({state})",
                body=body,
                payload=document,
            )
        sent += 1
    return sent
