"""The registry tells traces which (prompt name, version) pairs exist, per organization."""

from __future__ import annotations

from llmops.traces.registry import prompt_version_resolvers, unregistered_prompt_versions
from prompts.selectors import known_prompt_versions

from .conftest import make_prompt, propose


def test_resolver_is_registered_and_scoped(acme, globex, prompt):
    assert known_prompt_versions in prompt_version_resolvers
    propose(acme, prompt)
    make_prompt(globex, name="support-reply")
    pairs = {("support-reply", 1), ("support-reply", 2), ("ghost", 1)}
    assert known_prompt_versions(org=acme.org, pairs=pairs) == {("support-reply", 1)}
    assert known_prompt_versions(org=globex.org, pairs=pairs) == set()
    assert unregistered_prompt_versions(org=acme.org, pairs=pairs) == {
        ("support-reply", 2),
        ("ghost", 1),
    }
