"""The README's stdlib client helper, run as written against a live server: fetch, 304
revalidation, stale-while-revalidate after a deploy, and the shipped fallback."""

from __future__ import annotations

import re
import time
from pathlib import Path

from prompts import services

from .conftest import approved_version

README = Path(__file__).resolve().parents[2] / "README.md"


def _client_module() -> dict:
    text = README.read_text()
    block = re.search(
        r"<!-- prompts:client:start -->\s*```python\n(.*?)```\s*<!-- prompts:client:end -->",
        text,
        re.DOTALL,
    )
    assert block, "the client helper is missing from README.md"
    namespace: dict = {}
    exec(compile(block.group(1), "README.md:PromptClient", "exec"), namespace)  # noqa: S102
    return namespace


def _wait_for(predicate, seconds=5.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_readme_client_against_live_server(transactional_db, live_server, acme, prompt, api_key):
    ns = _client_module()
    v1 = approved_version(acme, prompt)
    services.label_deploy(actor=acme.actor("maint2"), prompt=prompt, label="production", version=v1)
    raw = api_key(acme, ["prompts:read"])
    client = ns["PromptClient"](live_server.url, raw, ttl=0.0)
    first = client.get(prompt.name)
    assert first["version"] == 1
    assert "Answer Ada about billing" in ns["render"](
        first["template"], customer_name="Ada", topic="billing"
    )
    # Stale copy served at once while a background revalidation runs (304: same copy).
    assert client.get(prompt.name)["version"] == 1
    v2 = approved_version(acme, prompt, template="Hi {{ customer_name }}")
    services.label_deploy(actor=acme.actor("maint2"), prompt=prompt, label="production", version=v2)
    assert client.get(prompt.name)["version"] in (1, 2)  # stale while revalidating
    assert _wait_for(lambda: client.get(prompt.name)["version"] == 2)
    # With ttl=0 every get starts a revalidation: let the last one end (and the server finish
    # its request) before the test's database is flushed.
    client.ttl = 3600.0
    assert _wait_for(lambda: not client._refreshing)
    time.sleep(0.3)

    offline = ns["PromptClient"](
        "http://127.0.0.1:9", raw, timeout=0.5, fallbacks={prompt.name: {"template": "fallback"}}
    )
    assert offline.get(prompt.name) == {"template": "fallback"}
