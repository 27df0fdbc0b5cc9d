"""Shared fixtures: every test world holds two organizations, acme and globex."""

from __future__ import annotations

import os

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from .factories import PASSWORD, make_org


@pytest.fixture(autouse=True)
def _clear_cache():
    from llmops.tenancy.authentication import forget_process_memos

    cache.clear()
    forget_process_memos()
    yield
    cache.clear()
    forget_process_memos()


@pytest.fixture
def acme(db):
    return make_org("acme")


@pytest.fixture
def globex(db):
    return make_org("globex")


@pytest.fixture
def orgs(acme, globex):
    return acme, globex


@pytest.fixture
def password():
    return PASSWORD


@pytest.fixture
def login(client):
    def _login(user):
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
        return client

    return _login


@pytest.fixture
def api_key():
    """Mint a key: api_key(world, scopes, user=None) -> raw key."""
    from llmops.tenancy.actor import Actor
    from llmops.tenancy.services import api_key_create

    def _make(world, scopes, user=None, name="test key"):
        _, raw = api_key_create(
            actor=Actor.system_for(world.org), name=name, scopes=scopes, user=user
        )
        return raw

    return _make


@pytest.fixture
def api():
    """An API client with a bearer key: api(raw_key)."""

    def _client(raw=None):
        client = APIClient()
        if raw:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        return client

    return _client


def pytest_collection_modifyitems(config, items):
    from django.conf import settings

    if getattr(settings, "IS_POSTGRES", False):
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL=postgres://...)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


os.environ.setdefault("LLMOPS_TESTING", "1")
