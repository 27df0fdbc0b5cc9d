"""Generations page filters: odd values are ignored like unreadable ones, never a 500."""

from __future__ import annotations

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "params",
    [
        {"version": "\u00b2"},
        {"prompt": "support-reply", "version": "\u00b2"},
        {"since": "2026-13-45"},
        {"until": "2026-02-30"},
    ],
)
def test_generations_page_odd_filter_values(acme, login, params):
    client = login(acme.users["viewer"])
    url = reverse("traces:generations", kwargs={"org_slug": acme.org.slug})
    assert client.get(url, params).status_code == 200


def test_dashboard_compare_with_non_ascii_digit(acme, login):
    client = login(acme.users["viewer"])
    url = reverse("traces:dashboard", kwargs={"org_slug": acme.org.slug})
    assert client.get(url, {"a": "support-reply:\u00b2", "b": "x:1"}).status_code == 200
