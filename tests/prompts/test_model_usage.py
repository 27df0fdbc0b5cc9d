"""The catalog's model page lists what still uses a model: prompt versions pinning it (with
their labels) and recent production traffic, through the apps' `model_usage` hooks."""

import json

from django.urls import reverse

from llmops.tenancy.actor import Actor
from llmops.traces.services import generations_ingest
from prompts import services

from .conftest import approved_version, make_model, propose


def test_model_page_shows_pinning_versions_labels_and_traffic(acme, globex, model, prompt, login):
    v1 = approved_version(acme, prompt)
    services.label_deploy(
        actor=acme.actor("maint2"), prompt=prompt, label="production", version=v1, reason="go"
    )
    propose(acme, prompt, template="Hello {{ customer_name }}, about {{ topic }}.")
    other = make_model(acme, model_id="gpt-4o-2024-08-06")
    body = {
        "generations": [
            {
                "external_id": f"g{i}",
                "model": model.model_id,
                "input": {"q": i},
                "output": "ok",
                "latency_ms": 100 + i,
                "status": "error" if i == 0 else "ok",
            }
            for i in range(4)
        ]
    }
    machine = Actor.system_for(acme.org)
    result = generations_ingest(actor=machine, body=json.dumps(body).encode())
    assert result.accepted == 4

    client = login(acme.users["viewer"])
    url = reverse("catalog:detail", kwargs={"org_slug": "acme", "pk": model.pk})
    page = client.get(url).content.decode()
    usage = page[page.index('id="usage"') :]
    usage = usage[: usage.index("</section>")]
    assert "support-reply v1" in usage and "labels: production" in usage
    assert "support-reply v2" in usage and "in_review" in usage
    assert "4 requests in 7 days" in usage and "25.0% errors" in usage

    # Another model of the same organization is used by nothing.
    page = client.get(reverse("catalog:detail", kwargs={"org_slug": "acme", "pk": other.pk}))
    assert "No prompt version pins this model." in page.content.decode()
    assert "No recorded traffic on this model id" in page.content.decode()
