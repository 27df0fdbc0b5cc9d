"""The audit trail in Django's admin: listed for superusers, never editable there."""

from __future__ import annotations

import pytest

from .test_log import record

pytestmark = pytest.mark.django_db


def test_admin_lists_events_read_only(acme, admin_client):
    event = record(acme, "team.created", label="<script>alert(1)</script>")
    changelist = admin_client.get("/admin/audit/auditevent/")
    assert changelist.status_code == 200
    assert b"team.created" in changelist.content
    assert b"<script>alert(1)</script>" not in changelist.content
    page = admin_client.get(f"/admin/audit/auditevent/{event.pk}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content  # a view page, no form to save
    assert admin_client.get("/admin/audit/auditevent/add/").status_code == 403
    assert admin_client.get(f"/admin/audit/auditevent/{event.pk}/delete/").status_code == 403
    before = (event.action, event.hash)
    admin_client.post(f"/admin/audit/auditevent/{event.pk}/change/", {"action": "forged"})
    event.refresh_from_db()
    assert (event.action, event.hash) == before
