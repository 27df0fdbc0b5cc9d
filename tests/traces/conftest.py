import json

import pytest


@pytest.fixture
def ingest_key(acme, api_key):
    return api_key(acme, ["ingest"])


@pytest.fixture
def post_batch(api):
    """post_batch(raw_key, items | bytes) -> response."""

    def _post(raw, items):
        body = items if isinstance(items, bytes) else json.dumps({"generations": items}).encode()
        return api(raw).generic(
            "POST", "/api/v1/generations/batch", body, content_type="application/json"
        )

    return _post


def item(external_id, **extra):
    base = {
        "external_id": external_id,
        "model": "claude-sonnet-4-5-20250929",
        "input": [{"role": "user", "content": "Where is my parcel?"}],
        "output": "It ships today.",
        "prompt": {"name": "support-reply", "version": 2},
        "latency_ms": 800,
        "input_tokens": 1000,
        "output_tokens": 200,
    }
    base.update(extra)
    return base
