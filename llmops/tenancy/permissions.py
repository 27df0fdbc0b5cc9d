"""DRF permission: the request's actor may do the view's action kind (scopes included).
Object-level rules are checked by services through the same `can`."""

from __future__ import annotations

from rest_framework import exceptions, permissions

from llmops.common.http import client_ip

from .actor import Actor
from .policy import can_any
from .selectors import membership_for, organizations_for_user


def request_actor(request) -> Actor | None:
    """The actor of an API request: from its key, or a session user in one organization
    (named by the `X-Organization` header, or the only one the user belongs to)."""
    if isinstance(request.auth, Actor):
        return request.auth
    cached = getattr(request, "_llmops_actor", None)
    if cached is not None:
        return cached
    user = request.user
    if not user or not user.is_authenticated:
        return None
    slug = request.headers.get("X-Organization")
    if not slug:
        orgs = list(organizations_for_user(user=user)[:2])
        if len(orgs) != 1:
            raise exceptions.ValidationError(
                {"X-Organization": ["Name the organization (slug) this request is for."]}
            )
        slug = orgs[0].slug
    membership = membership_for(user=user, org_slug=slug)
    if membership is None:
        raise exceptions.NotFound("No such organization.")
    actor = Actor(
        org=membership.organization,
        user=user,
        role=membership.role,
        ip=client_ip(request),
    )
    request._llmops_actor = actor
    request._request.organization = actor.org
    return actor


class HasScope(permissions.BasePermission):
    """A view names the action of each method in `actions = {"GET": "prompt.view", ...}`."""

    message = "Your key or role does not allow this."

    def has_permission(self, request, view) -> bool:
        actions = getattr(view, "actions", None)
        if actions is None:
            return False  # every API view must name its actions; none means closed
        if not request.user or not request.user.is_authenticated:
            raise exceptions.NotAuthenticated()
        actor = request_actor(request)
        action = actions.get(request.method) or (
            actions.get("GET") if request.method in ("HEAD", "OPTIONS") else None
        )
        if action is None:
            return False
        if not can_any(actor, action):
            self.message = f"Your key or role does not allow '{action}'."
            return False
        return True
