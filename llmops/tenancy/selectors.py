"""Tenant-scoped reads for tenancy: organizations, members, teams, keys."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db.models import Count, QuerySet

from .models import ApiKey, Invitation, Membership, Organization, Team

User = get_user_model()


def organizations_for_user(*, user) -> QuerySet[Organization]:
    if not user.is_authenticated:
        return Organization.objects.none()
    return Organization.objects.filter(memberships__user=user).order_by("name")


def membership_for(*, user, org_slug: str) -> Membership | None:
    if not user.is_authenticated:
        return None
    return (
        Membership.objects.select_related("organization")
        .filter(user=user, organization__slug=org_slug)
        .first()
    )


def role_of(*, user_id: int, org_id: int) -> str | None:
    return (
        Membership.objects.filter(user_id=user_id, organization_id=org_id)
        .values_list("role", flat=True)
        .first()
    )


def member_list(*, org, query: str = "", role: str = "") -> QuerySet[Membership]:
    qs = Membership.objects.for_org(org).select_related("user")
    if query:
        qs = qs.filter(user__username__icontains=query) | qs.filter(user__email__icontains=query)
    if role:
        qs = qs.filter(role=role)
    return qs.order_by("user__username")


def member_get(*, org, membership_id: int) -> Membership:
    return Membership.objects.for_org(org).select_related("user").get(pk=membership_id)


def members_with_role(*, org, role: str) -> QuerySet:
    return User.objects.filter(
        memberships__organization=org, memberships__role=role, is_active=True
    )


def admins_of(*, org) -> QuerySet:
    return members_with_role(org=org, role="admin")


def team_list(*, org) -> QuerySet[Team]:
    return Team.objects.for_org(org).annotate(member_count=Count("group__user")).order_by("name")


def team_get(*, org, team_id: int) -> Team:
    return Team.objects.for_org(org).select_related("group").get(pk=team_id)


def team_members(*, team) -> QuerySet:
    return team.group.user_set.order_by("username")


def api_key_list(*, org, include_revoked: bool = False, user=None) -> QuerySet[ApiKey]:
    """The organization's keys; with `user`, only that person's personal keys."""
    qs = ApiKey.objects.for_org(org).select_related("user", "created_by")
    if user is not None:
        qs = qs.filter(user=user)
    if not include_revoked:
        qs = qs.filter(revoked_at__isnull=True)
    return qs.order_by("-created_at")


def api_key_get(*, org, key_id: int) -> ApiKey:
    return ApiKey.objects.for_org(org).get(pk=key_id)


def invitation_list(*, org) -> QuerySet[Invitation]:
    return Invitation.objects.for_org(org).filter(accepted_at__isnull=True, revoked_at__isnull=True)


ORG_CACHE_SECONDS = 300


def organization_by_id_cached(org_id: int) -> Organization | None:
    key = f"tenancy:org:{org_id}"
    org = cache.get(key)
    if org is None:
        org = Organization.objects.filter(pk=org_id).first()
        if org is not None:
            cache.set(key, org, ORG_CACHE_SECONDS)
    return org


def organization_cache_clear(org_id: int) -> None:
    cache.delete(f"tenancy:org:{org_id}")


def member_user(*, org, username: str):
    """The user named `username` if they are a member of `org`, else None."""
    if not username:
        return None
    return User.objects.filter(username=username, memberships__organization=org).first()


def staff_members(*, org) -> QuerySet[Membership]:
    """Admins and maintainers (who may command incidents, own items...)."""
    return member_list(org=org).filter(role__in=("admin", "maintainer"))
