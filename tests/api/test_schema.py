"""The OpenAPI schema matches the answers (README, HTTP API): real responses of every read,
on demo data, and the error answers, validated against the generated schema."""

from __future__ import annotations

import io
import json
import re
from datetime import datetime
from importlib import import_module
from urllib.parse import urlsplit

import jsonschema
import pytest
from drf_spectacular.generators import SchemaGenerator

from llmops.common.api import ERROR_RESPONSES

pytestmark = pytest.mark.django_db

DEMO_APPS = [
    "llmops.evals",
    "llmops.catalog",
    "llmops.traces",
    "prompts",
    "reviews",
    "incidents",
]
ALL_SCOPES = [
    "ingest",
    "prompts:read",
    "prompts:write",
    "prompts:approve",
    "prompts:deploy",
    "evals:write",
    "models:read",
    "models:write",
    "models:approve",
    "reviews:write",
    "reviews:manage",
    "incidents:write",
    "audit:read",
]


FORMATS = jsonschema.FormatChecker()


@FORMATS.checks("uri")
def _uri(value) -> bool:
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    return bool(parts.scheme and (parts.netloc or parts.path))


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value) -> bool:
    if isinstance(value, str):
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    return True


def openapi() -> dict:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(json.dumps(schema, default=str))


def as_json_schema(node):
    """OpenAPI 3.0 `nullable` -> JSON Schema (`anyOf` with null)."""
    if isinstance(node, list):
        return [as_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = {k: as_json_schema(v) for k, v in node.items()}
    if node.pop("nullable", False):
        return {"anyOf": [node, {"type": "null"}]}
    return node


class Contract:
    def __init__(self):
        self.doc = openapi()
        self.components = as_json_schema(self.doc["components"])
        self.patterns = [
            (re.compile("^" + re.sub(r"\{[^}]+\}", r"[^/]+", path) + "$"), path)
            for path in self.doc["paths"]
        ]

    def operation(self, method: str, url: str) -> dict:
        path = url.split("?")[0]
        matches = [template for rx, template in self.patterns if rx.match(path)]
        # The most specific template (fewest parameters) wins: /models/check over /models/{id}.
        template = min(matches, key=lambda t: t.count("{"))
        return self.doc["paths"][template][method.lower()]

    def check(self, method: str, url: str, response) -> None:
        op = self.operation(method, url)
        code = str(response.status_code)
        assert code in op["responses"], (
            f"{method} {url} answered {code}, documented {sorted(op['responses'])}: "
            f"{response.content[:300]!r}"
        )
        content = op["responses"][code].get("content")
        if response.status_code == 204 or content is None:
            return
        media = response["Content-Type"].split(";")[0]
        assert media in content, f"{method} {url}: {media} not in {sorted(content)}"
        if media != "application/json":
            return
        schema = as_json_schema(content[media]["schema"])
        wrapped = {"allOf": [schema], "components": self.components}
        errors = sorted(
            jsonschema.Draft202012Validator(wrapped, format_checker=FORMATS).iter_errors(
                response.json()
            ),
            key=str,
        )
        assert not errors, f"{method} {url} ({code}): " + "; ".join(
            f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in errors[:5]
        )


@pytest.fixture
def contract():
    return Contract()


@pytest.fixture
def seeded(acme, globex):
    out = io.StringIO()
    for label in DEMO_APPS:
        if label == "llmops.traces":  # a few generations, not the demo's 5,000
            _ingest_some(acme)
            continue
        import_module(f"{label}.demo").seed(org=acme.org, users=acme.users, stdout=out)
    return acme


def _ingest_some(world, n: int = 40) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from llmops.traces.services import generations_ingest

    now = timezone.now()
    items = [
        {
            "external_id": f"schema-{i}",
            "model": "claude-sonnet-4-5-20250929",
            "prompt": {"name": ("support-reply", "summarize-ticket")[i % 2], "version": 1},
            "input": [{"role": "user", "content": f"Question {i}?"}],
            "output": f"Answer {i}.",
            "latency_ms": 500 + i,
            "input_tokens": 100,
            "output_tokens": 20,
            "user_ref": f"u-{i % 5}",
            "created_at": (now - timedelta(hours=i)).isoformat(),
        }
        for i in range(n)
    ]
    result = generations_ingest(
        actor=world.actor("admin"), body=json.dumps({"generations": items}).encode()
    )
    assert result.as_dict()["accepted"] == n, result.as_dict()


def first(client, url, key="results"):
    body = client.get(url).json()
    items = body[key] if isinstance(body, dict) else body
    return items[0] if items else None


def test_every_read_matches_the_schema(seeded, contract, api_key, api):
    client = api(api_key(seeded, ALL_SCOPES, user=seeded.users["admin"]))
    prompt = first(client, "/api/v1/prompts")["name"]
    model = first(client, "/api/v1/models")
    dataset = first(client, "/api/v1/eval-datasets")["id"]
    run = first(client, "/api/v1/eval-runs")["id"]
    incident = first(client, "/api/v1/incidents")["number"]
    queue = first(client, "/api/v1/queues")["id"]
    from llmops.traces.models import Generation

    generation = Generation.objects.filter(organization=seeded.org).first().external_id
    values = {
        "name": prompt,
        "number": "1",
        "model_id": model["model_id"],
        "queue_id": str(queue),
        "external_id": generation,
    }
    by_prefix = {"/api/v1/eval-datasets/": dataset, "/api/v1/eval-runs/": run}
    checked = []
    for path, ops in contract.doc["paths"].items():
        if "get" not in ops:
            continue

        def fill(match, path=path):
            param = match.group(1)
            if param == "id":
                for prefix, value in by_prefix.items():
                    if path.startswith(prefix):
                        return str(value)
                return str(model["id"])
            if param == "number" and path.startswith("/api/v1/incidents/"):
                return str(incident)
            return values[param]

        url = re.sub(r"\{([^}]+)\}", fill, path)
        if path == "/api/v1/models/check":
            url += f"?model={model['model_id']}"
        response = client.get(url)
        # No demo generation has the external id "batch": that read answers 404.
        expected = (404,) if path == "/api/v1/generations/batch" else (200, 304)
        assert response.status_code in expected, (url, response.content[:300])
        contract.check("GET", url, response)
        checked.append(path)
    assert len(checked) >= 20


@pytest.mark.parametrize(
    ("method", "url", "body", "status"),
    [
        ("GET", "/api/v1/incidents/999999", None, 404),
        ("GET", "/api/v1/prompts?cursor=bogus", None, 404),
        ("GET", "/api/v1/incidents?severity=SEV9", None, 400),
        ("POST", "/api/v1/incidents", {"title": 5}, 400),
        ("POST", "/api/v1/prompts", [1, 2], 400),
        ("POST", "/api/v1/queues", {}, 400),
        ("POST", "/api/v1/models/999999/transition", {"to": "approved"}, 404),
    ],
)
def test_error_answers_match_the_schema(acme, contract, api_key, api, method, url, body, status):
    client = api(api_key(acme, ALL_SCOPES, user=acme.users["admin"]))
    response = client.generic(
        method, url, json.dumps(body) if body is not None else "", "application/json"
    )
    assert response.status_code == status, response.content[:300]
    contract.check(method, url, response)
    assert set(response.json()["error"]) == {"code", "message", "details"}


def test_unauthenticated_and_forbidden_answers_match_the_schema(acme, contract, api_key, api):
    response = api().get("/api/v1/prompts")
    assert response.status_code == 401
    contract.check("GET", "/api/v1/prompts", response)
    reader = api(api_key(acme, ["prompts:read"]))
    response = reader.post("/api/v1/prompts", {"name": "x"}, format="json")
    assert response.status_code == 403
    contract.check("POST", "/api/v1/prompts", response)


def test_every_operation_documents_the_error_answers(contract):
    for path, ops in contract.doc["paths"].items():
        for method, op in ops.items():
            codes = set(op["responses"])
            expected = {"400", "401", "403", "404"}
            if method != "get":
                expected |= {"409", "413", "429"}
            assert expected <= codes, (method, path, sorted(codes))
            for code in expected:
                schema = op["responses"][code]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}
                assert op["responses"][code]["description"] == ERROR_RESPONSES[code]
            if "429" in codes:
                assert "Retry-After" in op["responses"]["429"]["headers"]
