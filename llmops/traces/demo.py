"""Demo production traffic: ~5,000 generations over the last 14 days across prompt versions and
models, with an error spike (gpt-4o, three days ago) and a cost spike (one end user, five days
ago) to spot on the dashboard, plus a little traffic under a prompt version the registry does
not know. Stored through the ingest service in batches of 1,000 (no HTTP)."""

from __future__ import annotations

import json
import math
import random
from datetime import timedelta

from django.utils import timezone

from llmops.catalog.selectors import models_by_model_ids
from llmops.tenancy.actor import Actor

from .services import generations_ingest, user_rollups_compact

SONNET = "claude-sonnet-4-5-20250929"
GPT4O = "gpt-4o-2024-08-06"
HAIKU = "claude-3-5-haiku-20241022"
# Used only when the catalog has no price for a model (USD per million tokens in, out).
FALLBACK_PRICES = {SONNET: (3.0, 15.0), GPT4O: (2.5, 10.0), HAIKU: (0.8, 4.0)}

QUESTIONS = [
    "Where is my parcel? It was due on Monday.",
    "How do I reset my password?",
    "Can I change the delivery address after ordering?",
    "I was charged twice for order 48213.",
    "Do you ship to Norway?",
    "The app crashes when I open my invoices.",
]
ANSWERS = [
    "Thanks for reaching out! Your parcel left our warehouse on **Tuesday** and should arrive "
    "within 2 business days. You can track it here: [tracking](https://example.com/track).",
    "To reset your password:\n\n1. Open *Settings*\n2. Choose **Security**\n3. Click "
    "*Reset password* and follow the e-mail link.",
    "Yes — you can change the address until the order ships. Open the order and choose "
    "*Edit delivery*.",
    "I'm sorry about the double charge. I've asked billing to refund the duplicate payment; "
    "it usually takes 3–5 days.",
    "We ship to Norway with standard (5–7 days) and express (2 days) delivery.",
    "Sorry about that! Please update the app to version 4.2, which fixes the invoices crash.",
]
SUMMARIES = [
    "Customer reports a late parcel; tracking shows it in transit. Priority: low.",
    "Billing issue: duplicate charge on one order. Refund requested. Priority: high.",
    "Bug: invoices screen crashes on Android 14. Workaround: update the app.",
]


def _plan(rng: random.Random, now):
    """(created_at, prompt name, version, model, overrides) for every demo generation."""
    start = now - timedelta(days=14)
    hours = 14 * 24
    for h in range(hours):
        at = start + timedelta(hours=h)
        days_ago = (now - at).total_seconds() / 86400
        # Diurnal volume: quiet nights, busy afternoons (UTC); ~5,000 in all.
        base = 19 * (0.45 + 0.55 * math.sin(math.pi * ((at.hour - 6) % 24) / 24) ** 2)
        for _ in range(rng.randint(int(base * 0.8), int(base * 1.2) + 1)):
            ts = at + timedelta(seconds=rng.randint(0, 3599))
            if ts >= now:
                continue
            roll = rng.random()
            if roll < 0.62:
                name = "support-reply"
                version = 1 if days_ago > 9 else (2 if days_ago > 1.5 or rng.random() < 0.85 else 4)
            elif roll < 0.92:
                name = "summarize-ticket"
                version = 1
            else:
                name, version = None, None  # legacy traffic that reports no prompt
            model = SONNET if rng.random() < 0.6 else GPT4O
            if name == "summarize-ticket" and rng.random() < 0.5:
                model = HAIKU
            yield ts, name, version, model, {}
    # Error spike: gpt-4o rate-limits three days ago and clients retry into it.
    outage = _error_spike_start(now)
    for i in range(160):
        ts = outage + timedelta(seconds=i * 120)
        yield ts, "support-reply", 2, GPT4O, {"fail": True}
    # Cost spike: one end user hammers the long-context path five days ago.
    spike = now - timedelta(days=5, hours=3)
    for i in range(250):
        ts = spike + timedelta(seconds=i * 14)
        yield (
            ts,
            "support-reply",
            2,
            SONNET,
            {"user_ref": "u-7f3a91", "input_tokens": rng.randint(60_000, 120_000)},
        )


def _error_spike_start(now):
    return (now - timedelta(days=3)).replace(hour=11, minute=0, second=0, microsecond=0)


def seed(*, org, users, stdout) -> None:
    rng = random.Random(f"traces-{org.slug}")
    now = timezone.now() - timedelta(minutes=1)
    catalog = models_by_model_ids(org=org, model_ids=list(FALLBACK_PRICES))
    error_spike = _error_spike_start(now)
    items = []
    for n, (ts, name, version, model, extra) in enumerate(_plan(rng, now)):
        in_spike = model == GPT4O and error_spike <= ts < error_spike + timedelta(hours=6)
        failed = extra.get("fail") or rng.random() < (0.65 if in_spike else 0.02)
        q = rng.randrange(len(QUESTIONS))
        if name == "summarize-ticket":
            output = rng.choice(SUMMARIES)
        else:
            output = ANSWERS[q]
        latency = rng.lognormvariate(math.log(900 if model != HAIKU else 350), 0.45)
        if in_spike:
            latency *= 3.5
        input_tokens = extra.get("input_tokens", rng.randint(300, 2200))
        output_tokens = 0 if failed else rng.randint(40, 400)
        item = {
            "external_id": f"demo-{org.slug}-{n:06d}",
            "created_at": ts.isoformat(),
            "model": model,
            "input": [
                {"role": "system", "content": "You are a helpful support agent for Acme."},
                {"role": "user", "content": QUESTIONS[q]},
            ],
            "output": "" if failed else output,
            "latency_ms": round(latency),
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "status": "error" if failed else "ok",
            "user_ref": extra.get("user_ref") or f"u-{rng.randint(1, 400):04x}",
            "tags": ["web"] if rng.random() < 0.7 else ["mobile"],
            "trace_id": f"tr-{rng.getrandbits(48):012x}",
        }
        if failed:
            item["error"] = "rate_limit_exceeded" if in_spike else "upstream timeout"
        if name:
            item["prompt"] = {"name": name, "version": version}
        if name == "support-reply" and rng.random() < 0.3:
            item["context"] = [
                {"source": "kb/shipping.md", "text": "Standard delivery takes 2-4 business days."}
            ]
        if rng.random() < 0.1:
            item["tool_calls"] = [{"name": "lookup_order", "arguments": {"order": "48213"}}]
        mv = catalog.get(model)
        if mv is None or mv.input_price_per_mtok is None:
            pin, pout = FALLBACK_PRICES[model]
            item["cost_usd"] = round((input_tokens * pin + output_tokens * pout) / 1e6, 8)
        items.append(item)
    actor = Actor.system_for(org)
    accepted = 0
    for i in range(0, len(items), 1000):
        body = json.dumps({"generations": items[i : i + 1000]}).encode()
        result = generations_ingest(actor=actor, body=body)
        accepted += result.accepted
    user_rollups_compact(org=org)  # what the beat task does every minute
    stdout.write(f"{org.slug}: {accepted} production generations over 14 days")
