"""Refused text (llmops.common.hygiene) on every route: a NUL character or an unpaired
surrogate in a JSON body, a form post, a query parameter or a path is a 400 naming the
field, never a 500.

Routes come from the URL resolver, so a new route is covered without editing this file; the
objects its URL names come from the isolation registry (tests/isolation), whose completeness
test makes every tenant route register a case."""

from __future__ import annotations

import json
import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from llmops.tenancy.policy import HUMAN_ONLY_SCOPES, SCOPES
from tests.isolation.registry import CASES, WORLD_BUILDERS, load_all

load_all()

NUL = "\u0000"
# A JSON text with a lone surrogate escape: Python's decoder turns it into a str that cannot
# be encoded as UTF-8.
SURROGATE_ESCAPE = "\\ud800"
WRITE_METHODS = ("post", "put", "patch")
QUERY_PARAMS = ("q", "tag", "action", "actor", "model", "status", "label", "source")


def _walk(patterns, prefix="", ns=None):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _walk(p.url_patterns, prefix + str(p.pattern), p.namespace or ns)
        elif isinstance(p, URLPattern) and p.name:
            yield prefix + str(p.pattern), (f"{ns}:{p.name}" if ns else p.name), p.callback


def _methods(callback) -> list[str]:
    cls = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if cls is None:
        return []
    return [m for m in WRITE_METHODS if hasattr(cls, m)]


def _routes(api: bool):
    found = []
    for pattern, name, callback in _walk(get_resolver().url_patterns):
        is_api = pattern.startswith("api/") and "/v1/" in pattern
        is_org_page = pattern.startswith("o/<slug:org_slug>/")
        if (api and is_api) or (not api and is_org_page):
            found.append((name, callback))
    return sorted(found, key=lambda r: r[0])


def _kwargs_for(route, acme):
    for case in CASES:
        if case.route == route:
            return case.kwargs(acme)
    pytest.fail(f"{route} has no isolation case (tests/isolation/cases_<app>.py)")


def _data_for(route, method, acme) -> dict:
    for case in CASES:
        if case.route == route and case.method == method and case.data is not None:
            return dict(case.data(acme))
    return {}


API_WRITES = [(route, method) for route, cb in _routes(api=True) for method in _methods(cb)]
PAGE_POSTS = [route for route, cb in _routes(api=False) if "post" in _methods(cb)]
API_LISTS = sorted({route for route, cb in _routes(api=True) if hasattr(cb.cls, "get")})
PAGES = sorted({route for route, cb in _routes(api=False) if hasattr(cb.view_class, "get")})


@pytest.fixture
def world(acme, globex):
    for build in WORLD_BUILDERS:
        build(acme, globex)
    return acme


@pytest.fixture
def keys(world, api_key):
    admin = api_key(world, list(SCOPES), user=world.users["admin"], name="personal")
    machine = api_key(world, list(SCOPES.keys() - HUMAN_ONLY_SCOPES), name="machine")
    return {"personal": admin, "machine": machine}


def _bodies(data: dict) -> dict[str, str]:
    """The route's own body (from its isolation case) with the refused text in every string
    value, or a body of common field names; and one with a refused object key."""
    base = dict(data) or {"name": "x", "title": "x", "reason": "x", "comment": "x", "to": "x"}

    def poison(value, bad):
        if isinstance(value, str):
            return value + bad
        if isinstance(value, dict):
            return {k: poison(v, bad) for k, v in value.items()}
        if isinstance(value, list):
            return [poison(v, bad) for v in value]
        return value

    marker = "@@BAD@@"
    return {
        "nul": json.dumps(poison(base, NUL)),
        "surrogate": json.dumps(poison(base, marker)).replace(marker, SURROGATE_ESCAPE),
        "nul key": json.dumps({**base, f"field{NUL}": "x"}),
        "infinity": json.dumps({**base, "number": 1}).replace('"number": 1', '"number": 1e309'),
    }


@pytest.mark.parametrize(
    "route, method", API_WRITES, ids=[f"{m.upper()} {r}" for r, m in API_WRITES]
)
def test_api_write_refuses_text_with_400_never_500(route, method, world, keys, api):
    url = reverse(route, kwargs=_kwargs_for(route, world))
    for key_name, raw in keys.items():
        for body_name, body in _bodies(_data_for(route, method, world)).items():
            response = api(raw).generic(method.upper(), url, body, content_type="application/json")
            where = f"{method.upper()} {url} ({key_name} key, {body_name})"
            assert response.status_code < 500, f"{where}: {response.status_code}"
            if response.status_code == 400:
                error = response.json()["error"]
                assert error["code"] == "invalid", where
                if re.search(r"NUL character|unpaired surrogate|finite number", error["message"]):
                    assert error["details"]["field"], where


@pytest.mark.parametrize("route", API_LISTS)
@pytest.mark.parametrize("param", QUERY_PARAMS)
def test_api_query_parameter_with_nul_is_400(route, param, world, keys, api):
    url = reverse(route, kwargs=_kwargs_for(route, world))
    response = api(keys["personal"]).get(url, {param: f"a{NUL}b"})
    assert response.status_code == 400, (url, response.status_code)
    error = response.json()["error"]
    assert error == {
        "code": "invalid",
        "message": f"{param} contains a NUL character.",
        "details": {"field": param},
    }
    # Invalid UTF-8 (a surrogate's bytes) is decoded with replacement characters: no 500.
    response = api(keys["personal"]).get(f"{url}?{param}=%ED%A0%80")
    assert response.status_code < 500, (url, response.status_code)


@pytest.mark.parametrize("route", PAGES)
def test_page_query_parameter_with_nul_is_a_styled_400(route, world, client):
    client.force_login(world.users["admin"], backend="django.contrib.auth.backends.ModelBackend")
    url = reverse(route, kwargs={"org_slug": world.org.slug, **_kwargs_for(route, world)})
    response = client.get(url, {"q": NUL})
    assert response.status_code == 400, (url, response.status_code)
    assert b'data-testid="bad-request"' in response.content
    assert b"q contains a NUL character." in response.content


@pytest.mark.parametrize("route", PAGE_POSTS)
def test_page_form_post_with_nul_is_400_never_500(route, world, client):
    client.force_login(world.users["admin"], backend="django.contrib.auth.backends.ModelBackend")
    url = reverse(route, kwargs={"org_slug": world.org.slug, **_kwargs_for(route, world)})
    data = _data_for(route, "post", world) or {"name": "x"}
    data = {k: (f"{v}{NUL}" if isinstance(v, str) else v) for k, v in data.items()}
    response = client.post(url, data)
    assert response.status_code == 400, (url, response.status_code)
    assert b"contains a NUL character" in response.content


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/generations/a%00b",
        "/api/v1/models/by-id/a%00b",
        "/api/v1/prompts/a%00b",
        "/o/acme/prompts/a%00b/",
        "/o/acme%00/",
    ],
)
def test_nul_in_a_path_is_400(path, world, keys, api, client):
    client.force_login(world.users["admin"], backend="django.contrib.auth.backends.ModelBackend")
    response = (api(keys["personal"]) if path.startswith("/api/") else client).get(path)
    assert response.status_code == 400, (path, response.status_code)
    if path.startswith("/api/"):
        assert response.json()["error"]["details"] == {"field": "path"}
    else:
        assert b"path contains a NUL character." in response.content
