"""The demo seeds a realistic catalog and evals through the services."""

from __future__ import annotations

import io

import pytest

from llmops.catalog import demo as catalog_demo
from llmops.catalog import selectors
from llmops.catalog.models import ModelEvidence, ModelVersion
from llmops.evals import demo as evals_demo
from llmops.evals.models import EvalDataset, EvalRun

pytestmark = pytest.mark.django_db


def test_demo_seeds_models_in_every_state_with_evidence(acme):
    out = io.StringIO()
    evals_demo.seed(org=acme.org, users=acme.users, stdout=out)
    catalog_demo.seed(org=acme.org, users=acme.users, stdout=out)
    models = ModelVersion.objects.filter(organization=acme.org)
    assert models.count() == 9
    statuses = set(models.values_list("status", flat=True))
    assert statuses == {"approved", "proposed", "rejected", "suspended", "retired"}
    assert len(set(models.values_list("provider", flat=True))) >= 6
    assert models.filter(is_floating=True).exists()
    soon = [
        m
        for m in models
        if m.deprecation_date and 0 < selectors.days_until(m.deprecation_date) <= 30
    ]
    assert len(soon) == 1
    assert EvalDataset.objects.filter(organization=acme.org).count() == 2
    assert EvalRun.objects.filter(organization=acme.org).count() >= 8
    evidence = ModelEvidence.objects.filter(organization=acme.org)
    assert evidence.filter(passed=True).exists() and evidence.filter(passed=False).exists()
    assert selectors.model_check(org=acme.org, model_id="claude-sonnet-4-5-20250929").allowed
