"""Catalog pages: list (filters, badges, countdown, empty state), propose form, detail with
evidence and history, decision form for admins only, break-glass through the page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from llmops.catalog import services
from llmops.catalog.models import ModelVersion
from llmops.evals.services import run_create

pytestmark = pytest.mark.django_db


def url(name, world, **kw):
    return reverse(f"catalog:{name}", kwargs={"org_slug": world.org.slug, **kw})


def make(world, model_id="claude-sonnet-4-5-20250929", who="maint1", **extra):
    fields = {"provider": "anthropic", "model_id": model_id, **extra}
    return services.model_propose(actor=world.actor(who), **fields)


def test_empty_list_invites_a_proposal(acme, login):
    html = login(acme.users["maint1"]).get(url("list", acme)).content.decode()
    assert "No models in the catalog yet" in html and "Propose the first one" in html


def test_list_badges_filters_and_countdown(acme, globex, login):
    soon = timezone.localdate() + timedelta(days=12)
    make(acme, deprecation_date=soon)
    make(acme, model_id="gpt-4o", provider="openai")
    make(globex, model_id="globex-only-20250101")
    client = login(acme.users["viewer"])
    html = client.get(url("list", acme)).content.decode()
    assert "claude-sonnet-4-5-20250929" in html and "gpt-4o" in html
    assert "globex-only" not in html
    assert "deprecation in 12 days" in html and "countdown-urgent" in html
    assert "floating" in html and "badge-proposed" in html
    assert "Propose a model" not in html  # viewers do not propose
    html = client.get(url("list", acme), {"provider": "openai"}).content.decode()
    assert "gpt-4o" in html and "claude-sonnet" not in html
    html = client.get(url("list", acme), {"status": "approved"}).content.decode()
    assert "No model matches these filters" in html


def test_list_query_count_is_flat(acme, login, django_assert_max_num_queries):
    for i in range(30):
        make(acme, model_id=f"model-{i}-20250101")
    client = login(acme.users["viewer"])
    with django_assert_max_num_queries(12):
        assert client.get(url("list", acme)).status_code == 200


def test_propose_form(acme, login):
    client = login(acme.users["maint1"])
    assert client.get(url("propose", acme)).status_code == 200
    r = client.post(
        url("propose", acme),
        {
            "provider": "openai",
            "model_id": "gpt-4o-2024-08-06",
            "input_price_per_mtok": "2.5",
            "data_classes": ["internal"],
            "use_cases": "support, summaries",
        },
    )
    model = ModelVersion.objects.get(model_id="gpt-4o-2024-08-06")
    assert r.status_code == 302 and r["Location"] == url("detail", acme, pk=model.pk)
    assert model.use_cases == ["support", "summaries"] and model.data_classes == ["internal"]
    r = client.post(url("propose", acme), {"provider": "openai", "model_id": "gpt-4o-2024-08-06"})
    assert r.status_code == 200 and "already in the catalog" in r.content.decode()
    assert login(acme.users["viewer"]).get(url("propose", acme)).status_code == 403


def test_detail_shows_evidence_history_and_decision_form_for_admin_only(acme, login):
    model = make(acme, notes="**Pinned** <script>alert(1)</script>")
    run = run_create(actor=acme.actor("maint1"), tool="custom", results=[{"passed": True}])
    services.model_attach_evidence(actor=acme.actor("maint1"), model=model, run=run)
    html = login(acme.users["admin"]).get(url("detail", acme, pk=model.pk)).content.decode()
    assert f"Run {run.pk}" in html and "passes" in html
    assert 'data-testid="decision-form"' in html and "proposed" in html
    assert "<script>alert(1)</script>" not in html and "<strong>Pinned</strong>" in html
    assert 'id="usage"' in html
    html = login(acme.users["maint1"]).get(url("detail", acme, pk=model.pk)).content.decode()
    assert 'data-testid="decision-form"' not in html


def test_admin_approves_through_the_page(acme, login):
    model = make(acme)
    run = run_create(actor=acme.actor("maint1"), tool="custom", results=[{"passed": True}])
    services.model_attach_evidence(actor=acme.actor("maint1"), model=model, run=run)
    client = login(acme.users["admin"])
    r = client.post(
        url("detail", acme, pk=model.pk), {"op": "decide", "decision": "approve", "comment": "ok"}
    )
    assert r.status_code == 302
    model.refresh_from_db()
    assert model.status == "approved"


def test_proposer_admin_is_blocked_then_break_glass(acme, login):
    model = make(acme, who="admin")
    client = login(acme.users["admin"])
    detail = url("detail", acme, pk=model.pk)
    r = client.post(detail, {"op": "decide", "decision": "approve"}, HTTP_REFERER=detail)
    assert r.status_code == 302
    model.refresh_from_db()
    assert model.status == "proposed"
    html = client.get(detail).content.decode()
    assert "Four eyes" in html
    client.post(
        detail,
        {
            "op": "decide",
            "decision": "approve",
            "break_glass_reason": "Single-admin org during the launch week.",
        },
    )
    model.refresh_from_db()
    assert model.status == "approved" and model.break_glass_used
    html = client.get(detail).content.decode()
    assert "Single-admin org during the launch week." in html and "break-glass-mark" in html


def test_maintainer_cannot_post_a_decision(acme, login):
    model = make(acme, who="admin")
    r = login(acme.users["maint1"]).post(
        url("detail", acme, pk=model.pk), {"op": "decide", "decision": "approve"}
    )
    assert r.status_code == 403
    model.refresh_from_db()
    assert model.status == "proposed"


def test_attach_run_and_edit_lifecycle_from_page(acme, login):
    model = make(acme)
    run = run_create(actor=acme.actor("maint1"), tool="custom", results=[{"passed": False}])
    client = login(acme.users["admin"])
    detail = url("detail", acme, pk=model.pk)
    assert f"Run {run.pk} · custom" in client.get(detail).content.decode()
    client.post(detail, {"op": "attach", "run": run.pk})
    assert model.evidence.get().passed is False
    client.post(
        detail,
        {"op": "lifecycle", "deprecation_date": "2027-01-31", "retirement_date": "2027-06-30"},
    )
    model.refresh_from_db()
    assert model.deprecation_date.isoformat() == "2027-01-31"


def test_usage_block_is_filled_by_app_hooks(acme, login, monkeypatch):
    from django.apps import apps

    model = make(acme)
    config = apps.get_app_config("traces")

    def model_usage(actor, m):
        assert m.pk == model.pk and actor.org == acme.org
        return [
            {"title": "Recent traffic", "rows": [{"label": "1,204 calls in 7 days", "href": ""}]}
        ]

    monkeypatch.setattr(config, "model_usage", model_usage, raising=False)
    html = login(acme.users["viewer"]).get(url("detail", acme, pk=model.pk)).content.decode()
    assert "Recent traffic" in html and "1,204 calls in 7 days" in html


def test_unknown_op_is_a_400_naming_it_and_changes_nothing(acme, login):
    model = make(acme)
    client = login(acme.users["admin"])
    for data in ({"op": "launch_rockets", "decision": "approve"}, {"decision": "approve"}):
        response = client.post(url("detail", acme, pk=model.pk), data)
        assert response.status_code == 400
        body = response.content.decode()
        assert 'data-testid="unknown-op"' in body
        assert (data.get("op") or "named no action") in body and "transition" in body
    model.refresh_from_db()
    assert model.status == "proposed" and model.decisions.count() == 1
