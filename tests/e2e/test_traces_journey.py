"""Production journey in a real browser: the dashboard draws its SVG charts from rollups,
and a generation whose output (and input, context, tool calls) is XSS payloads stays inert
as text and as sanitised Markdown: no dialog, no script, no request to another host."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

from django.utils import timezone
from playwright.sync_api import expect

from llmops.tenancy.actor import Actor
from llmops.traces.models import Generation
from llmops.traces.services import generations_ingest

XSS = Path(__file__).resolve().parents[1] / "fixtures" / "xss"


def _payloads() -> tuple[str, str]:
    html = (XSS / "html-payloads.txt").read_text(encoding="utf-8", errors="replace").splitlines()
    markdown = (XSS / "markdown-payloads.txt").read_text(encoding="utf-8")
    # Every 20th HTML payload (~330 of them) plus every Markdown payload.
    return "\n".join(html[::20]), markdown


def _seed(org):
    html, markdown = _payloads()
    now = timezone.now() - timedelta(minutes=10)
    items = [
        {
            "external_id": f"ok-{i}",
            "created_at": (now - timedelta(hours=i)).isoformat(),
            "model": "claude-sonnet-4-5-20250929" if i % 2 else "gpt-4o-2024-08-06",
            "prompt": {"name": "support-reply", "version": 1 + i % 2},
            "input": [{"role": "user", "content": "Where is my parcel?"}],
            "output": "It ships **today**.",
            "latency_ms": 300 + 40 * i,
            "input_tokens": 800,
            "output_tokens": 120,
            "cost_usd": 0.004,
            "status": "error" if i % 5 == 0 else "ok",
            "user_ref": f"u-{i % 3}",
        }
        for i in range(20)
    ]
    items.append(
        {
            "external_id": "xss-output",
            "created_at": now.isoformat(),
            "model": "gpt-4o-2024-08-06",
            "prompt": {"name": "support-reply", "version": 2},
            "input": [
                {"role": "system", "content": "<script>window.__pwned = 1</script>"},
                {"role": "user", "content": markdown},
            ],
            "output": markdown + "\n\n" + html,
            "context": [{"doc": "<img src=x onerror=alert('ctx')>"}],
            "tool_calls": [{"name": "<svg onload=alert('tool')>", "arguments": {"q": html[:500]}}],
            "metadata": {"note": "<iframe src=https://attacker.example/>"},
            "tags": ["<b>tag</b>"],
            "user_ref": "<script>alert('user')</script>",
            "latency_ms": 500,
        }
    )
    result = generations_ingest(
        actor=Actor.system_for(org), body=json.dumps({"generations": items}).encode()
    )
    assert result.rejected == 0, result.errors


def test_dashboard_and_hostile_generation(e2e_world, page, login_as, shot):
    acme = e2e_world["acme"]
    _seed(acme.org)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    login_as("acme-viewer")
    page.get_by_role("link", name="Production").first.click()
    expect(page.locator("h1")).to_have_text("Production")
    page.get_by_role("link", name="24h").click()
    expect(page.get_by_test_id("kpis")).to_be_visible()
    # Charts are server-side SVG with accessible titles.
    expect(page.locator("svg.chart")).to_have_count(4)
    expect(page.locator("svg.chart title").first).to_contain_text("Requests per hour")
    expect(page.get_by_test_id("by-version")).to_contain_text("support-reply v2")
    expect(page.get_by_test_id("compare")).to_be_visible()
    expect(page.get_by_test_id("top-spenders")).to_contain_text("u-1")
    shot("dashboard")

    page.goto("/o/acme/generations/")
    expect(page.get_by_test_id("generations")).to_be_visible()
    shot("generations")
    page.get_by_role("link", name="xss-output").click()
    expect(page.get_by_test_id("output-text")).to_contain_text("<script>alert(1)</script>")
    shot("generation-text")
    page.get_by_role("link", name="Show as Markdown (sanitised)").click()
    expect(page.get_by_test_id("output-markdown")).to_be_visible()
    shot("generation-markdown")

    output = page.get_by_test_id("output-markdown")
    assert output.locator("script, img, iframe, object, svg, style, form, base, meta").count() == 0
    for href in output.locator("a").evaluate_all("els => els.map(e => e.getAttribute('href'))"):
        scheme = re.match(r"^\s*([A-Za-z][A-Za-z0-9+.-]*):", href or "")
        assert scheme is None or scheme.group(1).lower() in {"http", "https", "mailto"}, href
    assert page.evaluate("() => window.__pwned === undefined")
    assert dialogs == []
    # Only the page's own scripts are on it.
    srcs = page.locator("script").evaluate_all("els => els.map(e => e.getAttribute('src'))")
    assert all(s and s.startswith("/static/") for s in srcs), srcs
    assert Generation.objects.filter(organization=acme.org).count() == 21
