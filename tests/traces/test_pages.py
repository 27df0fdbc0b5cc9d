"""Dashboard, generations list and detail: figures, filters, empty states, escaping."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from llmops.tenancy.actor import Actor
from llmops.traces import registry
from llmops.traces.models import Generation
from llmops.traces.services import generations_ingest

from .conftest import item

pytestmark = pytest.mark.django_db


def ingest(world, items):
    result = generations_ingest(
        actor=Actor.system_for(world.org), body=json.dumps({"generations": items}).encode()
    )
    assert result.rejected == 0, result.errors
    return result


def test_empty_dashboard_and_list(acme, login):
    client = login(acme.users["viewer"])
    r = client.get("/o/acme/dashboard/")
    assert r.status_code == 200
    assert b"No production traffic" in r.content
    r = client.get("/o/acme/generations/")
    assert b"No generations yet" in r.content


@pytest.fixture
def no_resolvers(monkeypatch):
    """Hide resolvers other apps registered (prompts does, in AppConfig.ready)."""
    monkeypatch.setattr(registry, "prompt_version_resolvers", [])


def test_dashboard_shows_figures_by_version_and_model(acme, login, no_resolvers):
    now = timezone.now() - timedelta(minutes=5)
    ingest(
        acme,
        [
            item(
                f"v1-{i}",
                prompt={"name": "support-reply", "version": 1},
                created_at=now.isoformat(),
                cost_usd=0.01,
                user_ref="heavy-user",
            )
            for i in range(6)
        ]
        + [
            item(
                f"v2-{i}",
                prompt={"name": "support-reply", "version": 2},
                created_at=now.isoformat(),
                status="error" if i == 0 else "ok",
                model="gpt-4o-2024-08-06",
                cost_usd=0.02,
            )
            for i in range(4)
        ],
    )
    client = login(acme.users["viewer"])
    r = client.get("/o/acme/dashboard/?window=24h")
    html = r.content.decode()
    assert r.status_code == 200
    assert "support-reply v1" in html and "support-reply v2" in html
    assert "gpt-4o-2024-08-06" in html
    assert "<title" in html and "<svg" in html
    # Top spenders load after the figures: htmx fetches the panel, a plain link without JS.
    assert "heavy-user" not in html
    assert 'hx-get="?window=24h&amp;panel=spenders"' in html
    panel = client.get("/o/acme/dashboard/?window=24h&panel=spenders", HTTP_HX_REQUEST="true")
    assert panel.status_code == 200
    assert b"heavy-user" in panel.content and b"<html" not in panel.content
    assert b"heavy-user" in client.get("/o/acme/dashboard/?window=24h&spenders=1").content
    assert 'data-testid="compare"' in html  # default comparison of the two newest versions
    assert "25.0%" in html  # v2 error rate
    assert "unregistered" not in html.lower().split("<h2")[0]  # no resolver: no finding
    assert "style=" not in html


def test_unregistered_versions_need_a_resolver(acme, login, no_resolvers):
    ingest(acme, [item("a", prompt={"name": "support-reply", "version": 9})])

    def resolver(*, org, pairs):
        return {p for p in pairs if p[1] < 5}

    client = login(acme.users["viewer"])
    assert b'data-testid="unregistered"' not in client.get("/o/acme/dashboard/").content
    registry.register_prompt_version_resolver(resolver)
    try:
        html = client.get("/o/acme/dashboard/").content.decode()
    finally:
        registry.unregister_prompt_version_resolver(resolver)
    assert 'data-testid="unregistered"' in html
    assert "support-reply v9" in html


def test_compare_two_versions_side_by_side(acme, login):
    ingest(
        acme,
        [item(f"a{i}", prompt={"name": "p", "version": 1}, latency_ms=100) for i in range(3)]
        + [item(f"b{i}", prompt={"name": "p", "version": 2}, latency_ms=400) for i in range(2)],
    )
    client = login(acme.users["viewer"])
    html = client.get("/o/acme/dashboard/?window=24h&a=p:1&b=p:2").content.decode()
    table = html.split('data-testid="compare"')[1].split("</table>")[0]
    assert "p v1" in table and "p v2" in table
    assert "Latency P50" in table


def test_generation_detail_escapes_output_and_markdown_is_sanitised(acme, login):
    payload = (
        "<img src=x onerror=alert(1)><script>alert(2)</script>[x](javascript:alert(3)) **bold**"
    )
    ingest(
        acme,
        [
            item(
                "xss",
                output=payload,
                context=[{"doc": "<b>ctx</b>"}],
                tool_calls=[{"name": "<i>t</i>"}],
            )
        ],
    )
    g = Generation.objects.get(external_id="xss")
    client = login(acme.users["viewer"])
    html = client.get(f"/o/acme/generations/{g.pk}/").content.decode()
    assert "<script>alert(2)" not in html
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;b&gt;ctx&lt;/b&gt;" in html
    assert "Where is my parcel?" in html  # input messages
    md = client.get(f"/o/acme/generations/{g.pk}/?render=markdown").content.decode()
    out = md.split('data-testid="output-markdown"')[1].split("</section>")[0]
    assert "<strong>bold</strong>" in out
    assert "<script" not in out and "<img" not in out
    assert 'href="javascript:' not in out


def test_list_filters_and_text_search(acme, login):
    ingest(
        acme,
        [
            item("one", output="refund approved", tags=["vip"], status="ok"),
            item("two", output="please wait", status="error", model="gpt-4o-2024-08-06"),
            item("three", output="refund denied", prompt={"name": "other", "version": 1}),
        ],
    )
    client = login(acme.users["viewer"])

    def ids(query):
        html = client.get(f"/o/acme/generations/?{query}").content.decode()
        return {x for x in ("one", "two", "three") if f">{x}</a>" in html}

    assert ids("") == {"one", "two", "three"}
    assert ids("q=refund") == {"one", "three"}
    assert ids("status=error") == {"two"}
    assert ids("model=gpt-4o-2024-08-06") == {"two"}
    assert ids("prompt=support-reply&version=2") == {"one", "two"}
    assert ids("prompt=other") == {"three"}
    assert ids("tag=vip") == {"one"}
    today = timezone.now().date()
    assert ids(f"since={today + timedelta(days=1)}") == set()
    assert ids(f"until={today}") == {"one", "two", "three"}
    assert b"No generations match" in client.get("/o/acme/generations/?q=nothing-like-this").content


def test_cursor_pagination_walks_every_row_once(acme, login, settings):
    base = timezone.now() - timedelta(hours=1)
    ingest(
        acme,
        [
            item(f"g{i:03d}", created_at=(base - timedelta(seconds=i // 3)).isoformat())
            for i in range(120)
        ],
    )
    client = login(acme.users["viewer"])
    seen = []
    url = "/o/acme/generations/"
    pages = 0
    while url:
        r = client.get(url)
        html = r.content.decode()
        seen += [x for x in (f"g{i:03d}" for i in range(120)) if f">{x}</a>" in html]
        pages += 1
        url = None
        if 'rel="next"' in html:
            href = html.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0]
            url = "/o/acme/generations/" + href.replace("&amp;", "&")
    assert pages == 3
    assert sorted(seen) == sorted(f"g{i:03d}" for i in range(120))
    assert len(seen) == 120


def test_bad_cursor_is_a_message_not_a_500(acme, login):
    client = login(acme.users["viewer"])
    r = client.get("/o/acme/generations/?cursor=%%%garbage")
    assert r.status_code in (200, 302)


def test_list_query_count_is_flat(acme, login):
    ingest(acme, [item(f"g{i}") for i in range(30)])
    client = login(acme.users["viewer"])
    client.get("/o/acme/generations/")
    with CaptureQueriesContext(connection) as few:
        client.get("/o/acme/generations/")
    ingest(acme, [item(f"h{i}") for i in range(30)])
    with CaptureQueriesContext(connection) as more:
        client.get("/o/acme/generations/")
    assert len(more) == len(few)


def test_dashboard_query_count_does_not_grow_with_rows(acme, login):
    ingest(acme, [item(f"g{i}") for i in range(10)])
    client = login(acme.users["viewer"])
    client.get("/o/acme/dashboard/")
    with CaptureQueriesContext(connection) as few:
        client.get("/o/acme/dashboard/")
    ingest(
        acme,
        [
            item(f"h{i}", prompt={"name": f"p{i}", "version": 1}, user_ref=f"u{i}")
            for i in range(40)
        ],
    )
    with CaptureQueriesContext(connection) as more:
        client.get("/o/acme/dashboard/")
    assert len(more) == len(few)
    assert not any(
        "traces_generation" in q["sql"] and "traces_generation_" not in q["sql"]
        for q in more.captured_queries
    )


def test_other_orgs_generation_is_404(acme, globex, login):
    ingest(globex, [item("g-secret")])
    g = Generation.objects.get(organization=globex.org)
    client = login(acme.users["admin"])
    assert client.get(f"/o/acme/generations/{g.pk}/").status_code == 404


def test_nav_and_home_card(acme, login):
    ingest(acme, [item("a")])
    html = login(acme.users["viewer"]).get("/o/acme/").content.decode()
    assert ">Production</a>" in html
    assert "requests in 24 h" in html


def test_detail_links_to_prompt_version_and_catalog_model(acme, login):
    from decimal import Decimal

    from llmops.catalog.models import ModelVersion

    mv = ModelVersion.objects.create(
        organization=acme.org,
        provider="anthropic",
        model_id="claude-sonnet-4-5-20250929",
        input_price_per_mtok=Decimal("3"),
        output_price_per_mtok=Decimal("15"),
        status="approved",
    )
    ingest(acme, [item("linked"), item("null-output", output=None)])
    g = Generation.objects.get(external_id="linked")
    html = login(acme.users["viewer"]).get(f"/o/acme/generations/{g.pk}/").content.decode()
    assert 'href="/o/acme/prompts/support-reply/v/2/"' in html
    assert f'href="/o/acme/models/{mv.pk}/"' in html
    assert "$0.00600" in html  # priced from the catalog
    empty = Generation.objects.get(external_id="null-output")
    assert empty.output == "" and not empty.output_is_json
