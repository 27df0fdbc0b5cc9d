"""factory_boy factories and the two-organization world every test starts from."""

from __future__ import annotations

from dataclasses import dataclass, field

import factory
from django.contrib.auth import get_user_model

from llmops.tenancy.actor import Actor
from llmops.tenancy.models import Membership, Organization, Role

User = get_user_model()
PASSWORD = "pw-for-tests-1"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @classmethod
    def _after_postgeneration(cls, instance, create, results=None):
        if create:
            instance.save(update_fields=["password"])


@dataclass
class OrgWorld:
    """One organization with a user per role (admin, maint1, maint2, reviewer1, reviewer2, viewer)."""

    org: Organization
    users: dict = field(default_factory=dict)
    objects: dict = field(default_factory=dict)  # filled by apps' world builders

    def actor(self, who: str = "admin") -> Actor:
        user = self.users[who]
        role = Membership.objects.get(user=user, organization=self.org).role
        return Actor(org=self.org, user=user, role=role)

    def __getattr__(self, name):
        objects = self.__dict__.get("objects", {})
        if name in objects:
            return objects[name]
        raise AttributeError(name)


ROLES = {
    "admin": Role.ADMIN,
    "maint1": Role.MAINTAINER,
    "maint2": Role.MAINTAINER,
    "reviewer1": Role.REVIEWER,
    "reviewer2": Role.REVIEWER,
    "viewer": Role.VIEWER,
}


def make_org(slug: str) -> OrgWorld:
    from llmops.tenancy.services import org_create

    users = {short: UserFactory(username=f"{slug}-{short}") for short in ROLES}
    org = org_create(slug=slug, name=slug.title(), admin=users["admin"])
    for short, role in ROLES.items():
        if short != "admin":
            Membership.objects.create(user=users[short], organization=org, role=role)
    return OrgWorld(org=org, users=users)
