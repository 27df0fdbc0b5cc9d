"""Hooks the apps to the right of traces register into (traces imports none of them).

`prompt_version_resolvers`: each is `fn(*, org, pairs: set[tuple[str, int]]) ->
set[tuple[str, int]]`, answering which (prompt name, version number) pairs the prompt
registry knows. The dashboard lists production traffic under any other pair as
"unregistered"; with no resolver registered nothing is called unregistered."""

from __future__ import annotations

from collections.abc import Callable

PromptVersionResolver = Callable[..., set]

prompt_version_resolvers: list[PromptVersionResolver] = []


def register_prompt_version_resolver(fn: PromptVersionResolver) -> PromptVersionResolver:
    if fn not in prompt_version_resolvers:
        prompt_version_resolvers.append(fn)
    return fn


def unregister_prompt_version_resolver(fn: PromptVersionResolver) -> None:
    if fn in prompt_version_resolvers:
        prompt_version_resolvers.remove(fn)


def unregistered_prompt_versions(
    *, org, pairs: set[tuple[str, int]]
) -> set[tuple[str, int]] | None:
    """The pairs no resolver knows, or None when no resolver is registered (unknown)."""
    if not prompt_version_resolvers:
        return None
    known: set[tuple[str, int]] = set()
    for fn in prompt_version_resolvers:
        known |= set(fn(org=org, pairs=set(pairs)) or ())
    return set(pairs) - known
