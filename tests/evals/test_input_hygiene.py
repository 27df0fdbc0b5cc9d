"""Evals: bad input is a 400 naming the field (API) or a form error (pages), never a 500."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from llmops.evals import services
from llmops.evals.models import EvalCase, EvalDataset, EvalPolicy

pytestmark = pytest.mark.django_db


@pytest.fixture
def ci(acme, api_key, api):
    return api(api_key(acme, ["evals:write"], name="ci"))


@pytest.mark.parametrize("name", [["a"], {"a": 1}, 12, 1.5, True, [[[]]]])
def test_dataset_name_that_is_not_text_is_400_naming_name(acme, ci, name):
    r = ci.post(reverse("evals_api:datasets"), {"name": name}, format="json")
    assert r.status_code == 400, r.content
    assert r.json()["error"]["details"]["fields"] == {"name": ["name must be text."]}
    assert not EvalDataset.objects.filter(organization=acme.org).exists()


@pytest.mark.parametrize("description", [["a"], {"a": 1}, 12])
def test_dataset_description_that_is_not_text_is_400(acme, ci, description):
    r = ci.post(
        reverse("evals_api:datasets"), {"name": "ok", "description": description}, format="json"
    )
    assert r.status_code == 400, r.content
    assert "description" in r.json()["error"]["details"]["fields"]


def test_invalid_policy_form_is_shown_again_not_a_500(acme, login):
    client = login(acme.users["admin"])
    url = reverse("evals:policies", kwargs={"org_slug": acme.org.slug})
    services.policy_default(org=acme.org)
    policy = EvalPolicy.objects.get(organization=acme.org)
    before = (policy.name, policy.thresholds)
    for data in (
        {"policy": policy.pk, "name": "", "thresholds": "pass_rate >= x", "min_cases": "a"},
        {"name": "new", "thresholds": "pass_rate 0.9", "min_cases": -1},
    ):
        response = client.post(url, data)
        assert response.status_code == 200
        assert "errorlist" in response.content.decode()
    policy.refresh_from_db()
    assert (policy.name, policy.thresholds) == before


def test_case_form_json_with_nul_or_surrogate_is_a_form_error(acme, login):
    dataset = services.dataset_create(actor=acme.actor("maint1"), name="d")
    client = login(acme.users["maint1"])
    url = reverse("evals:dataset_detail", kwargs={"org_slug": acme.org.slug, "pk": dataset.pk})
    for text in ('{"q": "\\u0000"}', '{"q": "\\ud800"}', '{"q": 1e999}'):
        response = client.post(url, {"op": "case", "input": text})
        assert response.status_code == 200, text
        assert "The JSON at q" in response.content.decode(), text
    assert not EvalCase.objects.filter(dataset=dataset).exists()


def test_import_with_surrogate_names_the_line(acme, login):
    dataset = services.dataset_create(actor=acme.actor("maint1"), name="d")
    client = login(acme.users["maint1"])
    url = reverse("evals:dataset_detail", kwargs={"org_slug": acme.org.slug, "pk": dataset.pk})
    upload = SimpleUploadedFile(
        "cases.jsonl", b'{"input": "ok"}\n{"input": {"q": "x\\ud800"}}\n', "application/x-ndjson"
    )
    response = client.post(url, {"op": "import", "file": upload})
    assert response.status_code == 200
    assert "Line 2 at input.q contains an unpaired surrogate." in response.content.decode()
    assert not EvalCase.objects.filter(dataset=dataset).exists()


def test_runs_page_filter_with_non_ascii_digit_is_ignored_not_a_500(acme, login):
    client = login(acme.users["viewer"])
    url = reverse("evals:runs", kwargs={"org_slug": acme.org.slug})
    assert client.get(url, {"dataset": "\u00b2"}).status_code == 200


def test_policy_minimum_cases_beyond_the_column_is_a_form_error(acme, login):
    client = login(acme.users["admin"])
    url = reverse("evals:policies", kwargs={"org_slug": acme.org.slug})
    response = client.post(
        url, {"name": "huge", "thresholds": "pass_rate >= 0.9", "min_cases": "9" * 20}
    )
    assert response.status_code == 200
    assert "errorlist" in response.content.decode()
    assert not EvalPolicy.objects.filter(organization=acme.org, name="huge").exists()
