"""Tenant isolation: globex members and keys get 404 for every acme object, nothing changes."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db import connection
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from llmops.tenancy.models import Organization, Team
from llmops.tenancy.policy import SCOPES

from .registry import CASES, WORLD_BUILDERS, load_all

load_all()

# Routes that belong to no organization.
PUBLIC = {
    "index",
    "healthz",
    "login",
    "logout",
    "invitation_accept",
    "api:schema",
    "api:docs",
    "schema",
    "docs",
}


def _walk(patterns, prefix="", ns=None):
    for p in patterns:
        if isinstance(p, URLResolver):
            namespace = p.namespace or ns
            yield from _walk(p.url_patterns, prefix + str(p.pattern), namespace)
        elif isinstance(p, URLPattern) and p.name:
            yield prefix + str(p.pattern), f"{ns}:{p.name}" if ns else p.name


def tenant_routes():
    routes = set()
    for pattern, name in _walk(get_resolver().url_patterns):
        if pattern.startswith("admin/"):
            continue
        if pattern.startswith("o/<slug:org_slug>/") or (
            pattern.startswith("api/") and "/v1/" in pattern
        ):
            routes.add(name)
    return routes


def test_every_tenant_route_has_an_isolation_case():
    covered = {case.route for case in CASES}
    missing = sorted(tenant_routes() - covered)
    assert not missing, (
        f"Routes without an isolation case (add them to tests/isolation/cases_<app>.py): {missing}"
    )


@pytest.fixture
def world(acme, globex):
    for build in WORLD_BUILDERS:
        build(acme, globex)
    return acme, globex


def _org_models():
    """Every model with a foreign key (or one-to-one) named `organization` to Organization
    (whose table exists: an app being written may not have its migration yet)."""
    found = []
    tables = set(connection.introspection.table_names())
    for model in apps.get_models():
        if model._meta.db_table not in tables:
            continue
        try:
            field = model._meta.get_field("organization")
        except Exception:  # noqa: BLE001 - FieldDoesNotExist: not tenant-owned
            continue
        if getattr(field, "related_model", None) is Organization:
            found.append(model)
    return found


def _snapshot(org):
    """Every tenant-owned row of the organization, as values, plus its teams' members and
    the organization row itself: a request of the other organization must change none."""
    snap = {"organization": list(Organization.objects.filter(pk=org.pk).values())}
    for model in _org_models():
        snap[model._meta.label] = list(
            model._default_manager.filter(organization=org).order_by("pk").values()
        )
    snap["team members"] = sorted(
        Team.objects.filter(organization=org).values_list("pk", "group__user")
    )
    return snap


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_other_organization_gets_404(case, world, client, api_key, api):
    acme, globex = world
    before = _snapshot(acme.org)
    kwargs = case.kwargs(acme)
    data = case.data(acme) if case.data else None
    if case.is_api:
        raw = api_key(
            globex,
            list(case.scopes)
            or list(SCOPES.keys() - {"prompts:approve", "models:approve", "reviews:write"}),
        )
        personal = api_key(globex, list(SCOPES), user=globex.users["admin"], name="personal")
        for key in (raw, personal):
            c = api(key)
            url = reverse(case.route, kwargs=kwargs)
            response = (
                getattr(c, case.method)(url, data, format="json")
                if data is not None
                else getattr(c, case.method)(url)
            )
            _check(case, response, acme)
    else:
        client.force_login(
            globex.users["admin"], backend="django.contrib.auth.backends.ModelBackend"
        )
        # 1. acme's URL as a globex member: not a member, so 404.
        url = reverse(case.route, kwargs={"org_slug": acme.org.slug, **kwargs})
        response = getattr(client, case.method)(url, data or {})
        assert response.status_code == 404, f"{url} as globex admin: {response.status_code}"
        # 2. acme's object under globex's own URL: 404 (or, for lists, none of acme's data).
        url = reverse(case.route, kwargs={"org_slug": globex.org.slug, **kwargs})
        response = getattr(client, case.method)(url, data or {})
        _check(case, response, acme)
    after = _snapshot(acme.org)
    changed = [name for name in before if before[name] != after.get(name)]
    assert not changed, f"{case.id} changed acme's rows: {changed}"


def _check(case, response, acme):
    if case.kind == "object":
        assert response.status_code == 404, f"{case.id}: expected 404, got {response.status_code}"
    elif case.kind == "list":
        assert response.status_code in (200, 404), f"{case.id}: {response.status_code}"
        body = (
            b"".join(response.streaming_content)
            if getattr(response, "streaming", False)
            else response.content
        )
        for marker in case.markers(acme) if case.markers else []:
            assert marker.encode() not in body, f"{case.id}: acme's {marker!r} leaked"
    elif case.kind == "create":
        assert response.status_code < 500, f"{case.id}: {response.status_code}"
