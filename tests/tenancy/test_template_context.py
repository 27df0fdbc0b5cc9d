"""What tenancy gives templates: the `can` tag (`{% load tenancy_tags %}`) and the
organizations of the switcher (context processor), now that `llmops.common` imports no app."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from django.template import Context, Template
from django.test import RequestFactory

from llmops.tenancy.context_processors import organizations
from llmops.tenancy.models import Membership

TAG = Template("{% load tenancy_tags %}{% can action as allowed %}{{ allowed }}")


def test_can_tag_asks_the_policy_for_the_actor_in_context(acme, globex):
    for who, want in (("admin", "True"), ("maint1", "True"), ("viewer", "False")):
        out = TAG.render(Context({"actor": acme.actor(who), "action": "model.propose"}))
        assert out == want, who
    assert TAG.render(Context({"action": "model.propose"})) == "False"  # nobody acting


def test_switcher_organizations_come_from_tenancy(acme, globex):
    Membership.objects.create(user=acme.users["viewer"], organization=globex.org, role="viewer")
    request = RequestFactory().get("/")
    request.user = acme.users["viewer"]
    assert [o.slug for o in organizations(request)["my_orgs"]] == ["acme", "globex"]
    request.user = acme.users["maint1"]
    assert [o.slug for o in organizations(request)["my_orgs"]] == ["acme"]
    request.user = AnonymousUser()
    assert organizations(request) == {}
