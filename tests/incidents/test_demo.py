"""The demo seeds a runbook for every category and incidents in several states."""

from __future__ import annotations

import io

import pytest

from incidents import demo
from incidents.models import Category, Incident, RunbookVersion
from llmops.audit.verify import verify_org

pytestmark = pytest.mark.django_db


def test_demo_seed(acme):
    demo.seed(org=acme.org, users=acme.users, stdout=io.StringIO())
    categories = set(RunbookVersion.objects.for_org(acme.org).values_list("category", flat=True))
    assert set(Category.values) <= categories
    statuses = set(Incident.objects.for_org(acme.org).values_list("status", flat=True))
    assert {"triage", "investigating", "mitigated", "closed", "cancelled", "duplicate"} <= statuses
    assert Incident.objects.get(organization=acme.org, number=1).alert_count == 3
    assert verify_org(acme.org.pk).ok
