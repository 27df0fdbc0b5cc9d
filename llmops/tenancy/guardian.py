"""The one place that talks to django-guardian (object grants to users and teams).

Global permissions never imply an object grant (`accept_global_perms=False`), and the
workflow apps use guardian's direct foreign-key permission models so deletes cascade."""

from __future__ import annotations

from guardian.core import ObjectPermissionChecker
from guardian.shortcuts import (
    assign_perm,
    get_groups_with_perms,
    get_objects_for_user,
    get_users_with_perms,
    remove_perm,
)


def grant(codename: str, user_or_group, obj) -> None:
    assign_perm(codename, user_or_group, obj)


def revoke(codename: str, user_or_group, obj) -> None:
    remove_perm(codename, user_or_group, obj)


def has_grant(user, codename: str, obj, *, cache: dict | None = None) -> bool:
    if user is None or not user.is_active:
        return False
    if cache is not None:
        checker = cache.get("guardian_checker")
        if checker is None:
            checker = cache["guardian_checker"] = ObjectPermissionChecker(user)
    else:
        checker = ObjectPermissionChecker(user)
    return checker.has_perm(codename, obj)


def prefetch_grants(user, objects, *, cache: dict) -> None:
    """Load the user's grants on these objects at once (a list page), so `has_grant` with the
    same cache answers each of them without a query."""
    objects = list(objects)
    if user is None or not user.is_active or not objects:
        return
    checker = cache.get("guardian_checker")
    if checker is None:
        checker = cache["guardian_checker"] = ObjectPermissionChecker(user)
    checker.prefetch_perms(objects)


def objects_with_grant(user, codename: str, queryset):
    """Objects of `queryset` the user holds `codename` on, directly or through a team."""
    return get_objects_for_user(
        user, codename, klass=queryset, accept_global_perms=False, with_superuser=False
    )


def users_with_grant(obj, codename: str):
    """Users holding the grant directly or through a team's group."""
    return get_users_with_perms(
        obj, only_with_perms_in=[codename], with_group_users=True, with_superusers=False
    )


def direct_holders(obj, codename: str) -> tuple[list, list]:
    users = list(
        get_users_with_perms(
            obj, only_with_perms_in=[codename], with_group_users=False, with_superusers=False
        )
    )
    groups = list(get_groups_with_perms(obj, attach_perms=True))
    groups = (
        [g for g, perms in groups if codename in perms]
        if groups and isinstance(groups[0], tuple)
        else []
    )
    return users, groups


def _direct_permission_models(base):
    """guardian's direct foreign-key permission models (content_object is a real FK) whose
    object belongs to an organization."""
    from django.apps import apps
    from django.db import models

    found = []
    for model in apps.get_models():
        if not issubclass(model, base) or model._meta.abstract:
            continue
        field = model._meta.get_field("content_object")
        if not isinstance(field, models.ForeignKey):
            continue
        target = field.related_model
        if any(f.name == "organization" for f in target._meta.get_fields()):
            found.append(model)
    return found


def revoke_all_in_org(user, org) -> int:
    """Drop every direct object grant the user holds on the organization's objects (when
    they leave it), so a later re-invitation does not silently restore old grants.
    Returns how many were dropped."""
    from guardian.models import UserObjectPermissionBase

    dropped = 0
    for model in _direct_permission_models(UserObjectPermissionBase):
        dropped += model.objects.filter(user=user, content_object__organization=org).delete()[0]
    return dropped
