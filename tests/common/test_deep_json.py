"""A deeply nested JSON body is a 400 in the error format on any API, never a 500."""

from django.urls import reverse


def test_deeply_nested_body_is_400_everywhere(acme, globex, api_key, api):
    raw = api_key(acme, ["prompts:write", "evals:write"])
    body = "[" * 50000 + "]" * 50000
    for url in (reverse("prompts_api:prompts"), reverse("evals_api:runs")):
        response = api(raw).generic("POST", url, body, content_type="application/json")
        assert response.status_code == 400, (url, response.status_code)
        assert response.json()["error"]["code"] == "invalid"
