"""API rate limits (README "Limits"): per key and per organization on the shared cache,
writes only, 429 with Retry-After and the JSON error body, overridable per organization."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from llmops.tenancy import throttling

pytestmark = pytest.mark.django_db

LIMITS = {
    "ingest": {"key": "3/min", "org": "5/min"},
    "alerts": {"key": "2/min", "org": "10/min"},
    "webhook_test": {"key": "2/min", "org": "20/min"},
    "writes": {"key": "2/min", "org": "3/min"},
}


@pytest.fixture(autouse=True)
def real_limits(settings):
    settings.API_LIMITS = LIMITS
    settings.API_LIMITS_SCALE = 1


def ingest(client, n: int):
    body = {"generations": [{"external_id": f"g{n}", "model": "m", "output": "ok"}]}
    return client.post("/api/v1/generations/batch", body, format="json")


def test_ingest_per_key_limit_answers_429_with_retry_after(acme, globex, api_key, api):
    client = api(api_key(acme, ["ingest"]))
    assert [ingest(client, n).status_code for n in range(3)] == [200, 200, 200]
    refused = ingest(client, 3)
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    error = refused.json()["error"]
    assert error["code"] == "throttled"
    assert "3 'ingest' requests in a minute for this API key" in error["message"]
    # Another organization is not affected.
    assert ingest(api(api_key(globex, ["ingest"])), 0).status_code == 200


def test_org_limit_counts_all_keys_of_the_organization(acme, globex, api_key, api):
    first, second = api(api_key(acme, ["ingest"])), api(api_key(acme, ["ingest"]))
    assert [ingest(first, n).status_code for n in range(3)] == [200, 200, 200]
    assert [ingest(second, n).status_code for n in range(3, 6)] == [200, 200, 429]
    assert "for this organization" in ingest(second, 9).json()["error"]["message"]
    assert ingest(api(api_key(globex, ["ingest"])), 0).status_code == 200


def test_buckets_are_separate_and_reads_are_not_limited(acme, api_key, api):
    client = api(api_key(acme, ["ingest", "incidents:write"]))
    assert [ingest(client, n).status_code for n in range(4)][-1] == 429
    alert = {"dedupe_key": "d", "title": "t", "category": "hallucination"}
    assert client.post("/api/v1/incidents/alerts", alert, format="json").status_code == 201
    assert client.post("/api/v1/incidents/alerts", alert, format="json").status_code == 200
    assert client.post("/api/v1/incidents/alerts", alert, format="json").status_code == 429
    # Reads pass however many there are.
    statuses = {client.get("/api/v1/me").status_code for _ in range(8)}
    statuses |= {client.get("/api/v1/incidents").status_code for _ in range(8)}
    assert statuses == {200}


def test_other_writes_use_the_writes_bucket(acme, api_key, api):
    client = api(api_key(acme, ["prompts:write"]))

    def create(n):
        body = {"name": f"p{n}", "template": "Hi {{ name }}"}
        return client.post("/api/v1/prompts", body, format="json").status_code

    codes = [create(n) for n in range(3)]
    assert codes[:2] != [429, 429] and codes[2] == 429


def test_limits_are_configurable_per_organization(acme, globex, api_key, api):
    acme.org.api_limits = {"ingest": {"key": "1/min"}}
    acme.org.full_clean()
    acme.org.save()
    acme_client = api(api_key(acme, ["ingest"]))
    assert [ingest(acme_client, n).status_code for n in range(2)] == [200, 429]
    globex_client = api(api_key(globex, ["ingest"]))
    assert [ingest(globex_client, n).status_code for n in range(4)] == [200, 200, 200, 429]


@pytest.mark.parametrize(
    "value",
    [
        [1],
        {"nope": {"key": "1/min"}},
        {"ingest": "1/min"},
        {"ingest": {"user": "1/min"}},
        {"ingest": {"key": "lots"}},
        {"ingest": {"key": "5/fortnight"}},
    ],
)
def test_bad_per_organization_limits_are_refused(acme, value):
    acme.org.api_limits = value
    with pytest.raises(ValidationError) as exc:
        acme.org.full_clean()
    assert "api_limits" in exc.value.message_dict


def test_parse_rate():
    assert throttling.parse_rate("600/min") == (600, 60)
    assert throttling.parse_rate("5/s") == (5, 1)
    assert throttling.parse_rate("2/hour") == (2, 3600)
    with pytest.raises(ValueError):
        throttling.parse_rate("600")


def test_webhook_test_sends_are_limited(acme, login, monkeypatch):
    from llmops.notify import services

    endpoint, _ = services.webhook_create(
        actor=acme.actor(), name="Hook", url="https://hooks.example/x"
    )
    sent = []
    monkeypatch.setattr(
        services, "webhook_send_test", lambda *, actor, endpoint: sent.append(endpoint.pk)
    )
    client = login(acme.users["admin"])
    detail = reverse(
        "notify:webhook_detail", kwargs={"org_slug": acme.org.slug, "endpoint_id": endpoint.pk}
    )
    for _ in range(3):
        response = client.post(detail, {"op": "test"})
        assert response.status_code == 302
    assert sent == [endpoint.pk, endpoint.pk]
    page = client.get(detail).content.decode()
    assert "Rate limit reached: 2 &#x27;webhook_test&#x27; requests" in page


def test_session_requests_are_limited_per_person(acme, login):
    client = login(acme.users["admin"])
    body = json.dumps({"dedupe_key": "d", "title": "t", "category": "hallucination"})
    codes = [
        client.post("/api/v1/incidents/alerts", body, content_type="application/json").status_code
        for _ in range(3)
    ]
    assert codes[-1] == 429


def test_api_limits_command_sets_shows_and_audits(acme, api_key, api):
    from io import StringIO

    from django.core.management import call_command
    from django.core.management.base import CommandError

    from llmops.audit.models import AuditEvent

    out = StringIO()
    call_command("api_limits", "acme", "--set", "ingest.key=1/min", stdout=out)
    assert "ingest: key 1/60s (own), org 5/60s" in out.getvalue()
    acme.org.refresh_from_db()
    assert acme.org.api_limits == {"ingest": {"key": "1/min"}}
    event = AuditEvent.objects.get(organization=acme.org, action="organization.api_limits_changed")
    assert event.details["after"] == {"ingest": {"key": "1/min"}}
    client = api(api_key(acme, ["ingest"]))
    assert [ingest(client, n).status_code for n in range(2)] == [200, 429]
    with pytest.raises(CommandError, match="not a rate"):
        call_command("api_limits", "acme", "--set", "ingest.org=many", stdout=StringIO())
    with pytest.raises(CommandError, match="BUCKET.LEVEL"):
        call_command("api_limits", "acme", "--set", "reads.key=1/min", stdout=StringIO())
    call_command("api_limits", "acme", "--reset", stdout=StringIO())
    acme.org.refresh_from_db()
    assert acme.org.api_limits == {}
