"""Fixtures for the incidents tests: services called as acme's people."""

from __future__ import annotations

import pytest

from incidents import services


@pytest.fixture
def open_incident(acme):
    def _open(who="maint1", **kw):
        kw.setdefault("title", "Bot invents refund policy")
        kw.setdefault("category", "hallucination")
        return services.incident_open(actor=acme.actor(who), **kw)

    return _open


@pytest.fixture
def runbook(acme):
    def _make(who="maint1", **kw):
        kw.setdefault("title", "Hallucination response")
        kw.setdefault("steps", [{"text": "Confirm with a sample"}, {"text": "Roll back prompt"}])
        return services.runbook_create(actor=acme.actor(who), **kw)

    return _make
