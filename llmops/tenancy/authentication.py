"""API authentication: `Authorization: Bearer llmops_...` keys, cached so a warm request
costs no query; last use written at most once a minute."""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from rest_framework import authentication, exceptions

from llmops.common.http import client_ip

from . import keys
from .actor import Actor, KeyInfo
from .models import ApiKey, Membership
from .selectors import organization_by_id_cached


class MachinePrincipal:
    """request.user for a machine key: authenticated, but no person and no Django user."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, key: KeyInfo):
        self.key = key
        self.username = f"key:{key.prefix}"

    def get_username(self) -> str:
        return self.username

    def __str__(self) -> str:
        return self.username


def _cache_key(digest: str) -> str:
    return f"tenancy:apikey:{digest}"


def key_cache_forget(key_hash: str) -> None:
    cache.delete(_cache_key(key_hash))


def forget_keys_of_user(user_id: int) -> None:
    """Drop the cached look-ups of a person's keys (deactivated, role changed, removed)."""
    for key_hash in ApiKey.objects.filter(user_id=user_id).values_list("key_hash", flat=True):
        key_cache_forget(key_hash)


def _load(digest: str) -> dict | None:
    entry = cache.get(_cache_key(digest))
    if entry is not None:
        return entry
    row = ApiKey.objects.select_related("user").filter(key_hash=digest).first()
    if row is None or row.revoked_at is not None:
        return None
    role = None
    if row.user_id is not None:
        role = (
            Membership.objects.filter(user_id=row.user_id, organization_id=row.organization_id)
            .values_list("role", flat=True)
            .first()
        )
        if role is None or not row.user.is_active:
            return None
    entry = {
        "key": KeyInfo(
            id=row.pk,
            organization_id=row.organization_id,
            name=row.name,
            public_id=row.public_id,
            scopes=tuple(row.scopes),
            user_id=row.user_id,
            created_by_id=row.created_by_id,
        ),
        "user": row.user,
        "role": role,
    }
    cache.set(_cache_key(digest), entry, settings.LLMOPS["API_KEY_CACHE_SECONDS"])
    return entry


def _touch(key_id: int) -> None:
    if cache.add(f"tenancy:apikey-used:{key_id}", 1, settings.LLMOPS["API_KEY_LAST_USED_SECONDS"]):
        ApiKey.objects.filter(pk=key_id).update(last_used_at=timezone.now())


def actor_for_key(raw: str, request=None) -> tuple[object, Actor] | None:
    if not keys.well_formed(raw):
        return None
    entry = _load(keys.digest(raw))
    if entry is None:
        return None
    info: KeyInfo = entry["key"]
    org = organization_by_id_cached(info.organization_id)
    if org is None:
        return None
    _touch(info.id)
    actor = Actor(
        org=org,
        user=entry["user"],
        role=entry["role"],
        key=info,
        ip=client_ip(request) if request else None,
    )
    principal = entry["user"] if entry["user"] is not None else MachinePrincipal(info)
    return principal, actor


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <key>'.")
        try:
            raw = header[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed("The API key is not valid.")
        found = actor_for_key(raw, request)
        if found is None:
            raise exceptions.AuthenticationFailed("The API key is not valid, or it was revoked.")
        principal, actor = found
        request._request.organization = actor.org
        return principal, actor

    def authenticate_header(self, request):
        return 'Bearer realm="api"'
