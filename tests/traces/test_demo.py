"""The demo seeds ~5,000 generations with an error spike and a cost spike a user can spot."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.utils import timezone

from llmops.traces import demo, selectors
from llmops.traces.models import DailyUserRollup, Generation

pytestmark = pytest.mark.django_db


def test_demo_has_volume_an_error_spike_and_a_cost_spike(acme):
    demo.seed(org=acme.org, users=acme.users, stdout=io.StringIO())
    count = Generation.objects.filter(organization=acme.org).count()
    assert 4000 <= count <= 6000
    now = timezone.now()
    data = selectors.dashboard(org=acme.org, window="30d", now=now)
    assert data["summary"]["count"] == count
    # Error spike: the worst day's error rate is several times the typical one.
    rates = [s["error_rate"] for s in data["series"] if s["count"]]
    assert max(rates) > 3 * sorted(rates)[len(rates) // 2]
    # Cost spike: one end user tops the spenders by far.
    top = data["top_spenders"]
    assert top[0]["user_ref"] == "u-7f3a91"
    assert top[0]["cost_total"] > 10 * top[1]["cost_total"]
    # The seed ends with the compaction beat would run: one per-user row per user and day.
    users = DailyUserRollup.objects.filter(organization=acme.org)
    assert users.count() == len(set(users.values_list("user_ref", "day")))
    assert (
        sum(users.values_list("count", flat=True))
        == count - Generation.objects.filter(organization=acme.org, user_ref="").count()
    )
    days = selectors.rollup_series(org=acme.org, since=now - timedelta(days=14), step="day")
    costs = sorted(float(s["cost_total"]) for s in days)
    assert costs[-1] > 3 * costs[len(costs) // 2]
    # Several prompt versions and models.
    assert {k for k, _ in (s["key"] for s in data["by_version"])} >= {
        "support-reply",
        "summarize-ticket",
    }
    assert len(data["by_model"]) == 3
