"""The demo seeds the prompt registry through its services."""

from __future__ import annotations

from io import StringIO

from prompts import demo
from prompts.models import Deployment, Label, PromptVersion


def test_demo_seed(acme):
    demo.seed(org=acme.org, users=acme.users, stdout=StringIO())
    support = PromptVersion.objects.filter(prompt__name="support-reply").order_by("number")
    assert [v.status for v in support] == ["approved", "approved", "in_review"]
    assert Label.objects.get(prompt__name="support-reply", name="production").version.number == 2
    summarize = PromptVersion.objects.filter(prompt__name="summarize-ticket").order_by("number")
    assert [v.status for v in summarize] == ["approved", "in_review"]
    assert Deployment.objects.filter(is_rollback=True).count() == 1
    demo.seed(org=acme.org, users=acme.users, stdout=StringIO())  # idempotent
    assert PromptVersion.objects.filter(organization=acme.org).count() == 7
