"""API authentication: `Authorization: Bearer llmops_...` keys, cached so a warm request
costs no query; last use written at most once a minute."""

from __future__ import annotations

import time

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
    _entry_memo.pop(key_hash, None)


def forget_keys_of_user(user_id: int) -> None:
    """Drop the cached look-ups of a person's keys (deactivated, role changed, removed)."""
    for key_hash in ApiKey.objects.filter(user_id=user_id).values_list("key_hash", flat=True):
        key_cache_forget(key_hash)


def _load(digest: str) -> dict | None:
    now = time.monotonic()
    memo = _entry_memo.get(digest)
    if memo is not None and now - memo[0] < ENTRY_MEMO_SECONDS:
        return memo[1]
    entry = cache.get(_cache_key(digest))
    if entry is not None:
        _remember(digest, now, entry)
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
    _remember(digest, now, entry)
    return entry


def _remember(digest: str, now: float, entry: dict) -> None:
    if len(_entry_memo) >= ENTRY_MEMO_MAX:
        _entry_memo.clear()
    _entry_memo[digest] = (now, entry)


# Per-process memos that spare shared-cache round trips on the hot path (with Redis each
# round trip is most of a warm request). A key entry is remembered for one second, so a
# revocation made in another process takes effect there within a second (at once in the
# process that revoked it); the shared cache is invalidated at once either way.
ENTRY_MEMO_SECONDS = 1.0
ENTRY_MEMO_MAX = 10_000
_entry_memo: dict[str, tuple[float, dict]] = {}
_touched_at: dict[int, float] = {}
_org_memo: dict[int, tuple[float, object]] = {}
ORG_MEMO_SECONDS = 2.0


def _touch(key_id: int) -> None:
    """Write last_used_at at most once a minute: a process asks the shared cache at most once
    a minute per key, and `cache.add` lets only one process a minute through to the DB."""
    now = time.monotonic()
    seconds = settings.LLMOPS["API_KEY_LAST_USED_SECONDS"]
    if now - _touched_at.get(key_id, -seconds) < seconds:
        return
    _touched_at[key_id] = now
    if cache.add(f"tenancy:apikey-used:{key_id}", 1, seconds):
        ApiKey.objects.filter(pk=key_id).update(last_used_at=timezone.now())


def _organization(org_id: int):
    """The key's organization, memoised per process for two seconds (settings changes show
    within that), else from the shared cache."""
    now = time.monotonic()
    memo = _org_memo.get(org_id)
    if memo is not None and now - memo[0] < ORG_MEMO_SECONDS:
        return memo[1]
    org = organization_by_id_cached(org_id)
    if org is not None:
        _org_memo[org_id] = (now, org)
    return org


def org_memo_forget(org_id: int) -> None:
    _org_memo.pop(org_id, None)


def forget_process_memos() -> None:
    _entry_memo.clear()
    _touched_at.clear()
    _org_memo.clear()


def actor_for_key(raw: str, request=None) -> tuple[object, Actor] | None:
    if not keys.well_formed(raw):
        return None
    entry = _load(keys.digest(raw))
    if entry is None:
        return None
    info: KeyInfo = entry["key"]
    org = _organization(info.organization_id)
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
