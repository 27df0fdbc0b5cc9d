"""Demo data for the catalog: nine model versions across providers in every state (one
deprecating within 30 days, one floating), with eval runs on the demo datasets linked as
evidence (some passing, some failing)."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from django.utils import timezone

from llmops.evals.models import EvalDataset
from llmops.tenancy.actor import Actor

from . import services

RUN_SHAPES = {
    # model id -> (dataset name, tool, number of failures, number of errors)
    "claude-sonnet-4-5-20250929": ("Support answers — golden set", "promptfoo", 0, 0),
    "gpt-4o-2024-08-06": ("Support answers — golden set", "promptfoo", 1, 0),
    "claude-haiku-4-5-20251001": ("Refund policy edge cases", "promptfoo", 0, 0),
    "gpt-4o-mini-2024-07-18": ("Refund policy edge cases", "deepeval", 2, 1),
    "gemini-2.5-pro": ("Support answers — golden set", "ragas", 2, 1),
    "claude-3-5-sonnet-20241022": ("Support answers — golden set", "promptfoo", 0, 0),
    "gemini-2.0-flash-001": ("Refund policy edge cases", "custom", 0, 0),
    "gpt-4-turbo-2024-04-09": ("Support answers — golden set", "custom", 1, 0),
}


def _run(actor, model, dataset_name, tool, failures, errors, org):
    dataset = EvalDataset.objects.for_org(org).filter(name=dataset_name).first()
    cases = list(dataset.cases.order_by("id")) if dataset else []
    results = []
    for i, case in enumerate(cases or [None] * 10):
        error = i < errors
        failed = errors <= i < errors + failures
        results.append(
            {
                "case": case.pk if case else None,
                "input": case.input if case else {"question": f"q{i}"},
                "output": None
                if error
                else ("I think so?" if failed else (case.expected if case else "ok")),
                "passed": not (error or failed),
                "error": error,
                "score": None if error else (0.2 if failed else 0.95),
                "reason": "upstream 529: overloaded"
                if error
                else ("Missed the policy wording" if failed else ""),
            }
        )
    return services.model_run_record(
        actor=actor,
        model=model,
        run_kwargs={
            "tool": tool,
            "dataset": dataset,
            "results": results,
            "metrics": {"latency_ms_p50": 700 + (len(model.model_id) * 37) % 400},
            "commit": hashlib.sha1(model.model_id.encode()).hexdigest()[:7],
        },
    )


def seed(*, org, users, stdout) -> None:
    admin = Actor(org=org, user=users["admin"], role="admin")
    maint1 = Actor(org=org, user=users["maint1"], role="maintainer")
    maint2 = Actor(org=org, user=users["maint2"], role="maintainer")
    today = timezone.localdate()
    models = {}

    def propose(actor, **fields):
        model = services.model_propose(actor=actor, **fields)
        models[model.model_id] = model
        shape = RUN_SHAPES.get(model.model_id)
        if shape:
            _run(actor, model, *shape, org=org)
        return model

    sonnet = propose(
        maint1,
        provider="anthropic",
        model_id="claude-sonnet-4-5-20250929",
        display_name="Claude Sonnet 4.5",
        context_window=200000,
        input_price_per_mtok="3",
        output_price_per_mtok="15",
        use_cases=["support answers", "summaries"],
        data_classes=["public", "internal", "confidential"],
        notes="Default model for the **support bot**.",
    )
    services.model_decide(actor=admin, model=sonnet, decision="approve", comment="Golden set 100%.")

    gpt4o = propose(
        maint2,
        provider="openai",
        model_id="gpt-4o-2024-08-06",
        display_name="GPT-4o (2024-08-06)",
        context_window=128000,
        input_price_per_mtok="2.5",
        output_price_per_mtok="10",
        use_cases=["classification", "extraction"],
        data_classes=["public", "internal"],
    )
    services.model_decide(actor=admin, model=gpt4o, decision="approve", comment="11/12 on golden.")

    old_sonnet = propose(
        maint1,
        provider="anthropic",
        model_id="claude-3-5-sonnet-20241022",
        display_name="Claude 3.5 Sonnet (v2)",
        context_window=200000,
        input_price_per_mtok="3",
        output_price_per_mtok="15",
        use_cases=["support answers"],
        data_classes=["public", "internal"],
        deprecation_date=today + timedelta(days=21),
        retirement_date=today + timedelta(days=112),
        lifecycle_source_url="https://docs.anthropic.com/en/docs/resources/model-deprecations",
        replacement=sonnet.pk,
    )
    services.model_decide(actor=admin, model=old_sonnet, decision="approve")

    flash = propose(
        maint2,
        provider="vertex_ai",
        model_id="gemini-2.0-flash-001",
        display_name="Gemini 2.0 Flash",
        platform_id="projects/acme-ml/locations/europe-west4/publishers/google/models/gemini-2.0-flash-001",
        context_window=1048576,
        input_price_per_mtok="0.15",
        output_price_per_mtok="0.6",
        use_cases=["triage"],
        data_classes=["public"],
    )
    services.model_decide(actor=admin, model=flash, decision="approve")
    services.model_transition(
        actor=admin,
        model=flash,
        to="suspended",
        reason="INC-12: hallucinated refund amounts after the vendor's silent update.",
    )

    turbo = propose(
        maint1,
        provider="azure_openai",
        model_id="gpt-4-turbo-2024-04-09",
        display_name="GPT-4 Turbo (Azure)",
        platform_id="acme-gpt4-turbo-eu",
        input_price_per_mtok="10",
        output_price_per_mtok="30",
        deprecation_date=today - timedelta(days=120),
        retirement_date=today - timedelta(days=10),
        replacement=gpt4o.pk,
    )
    services.model_decide(actor=admin, model=turbo, decision="approve")
    services.model_transition(
        actor=admin, model=turbo, to="deprecated", reason="Vendor deprecation."
    )
    services.model_transition(actor=admin, model=turbo, to="retired", reason="Azure retired it.")

    # Awaiting a decision: passing evidence (haiku) and failing evidence (mini).
    propose(
        maint1,
        provider="anthropic",
        model_id="claude-haiku-4-5-20251001",
        display_name="Claude Haiku 4.5",
        context_window=200000,
        input_price_per_mtok="1",
        output_price_per_mtok="5",
        use_cases=["triage", "routing"],
        data_classes=["public", "internal"],
        notes="Cheaper triage; all refund edge cases pass.",
    )
    propose(
        maint2,
        provider="openai",
        model_id="gpt-4o-mini-2024-07-18",
        display_name="GPT-4o mini",
        input_price_per_mtok="0.15",
        output_price_per_mtok="0.6",
        use_cases=["routing"],
    )
    # Floating id: recorded, flagged, not approvable unless the organization allows it.
    propose(
        maint2,
        provider="google",
        model_id="gemini-2.5-pro",
        display_name="Gemini 2.5 Pro (floating alias)",
        input_price_per_mtok="1.25",
        output_price_per_mtok="10",
    )
    llama = propose(
        maint1,
        provider="self_hosted",
        model_id="llama-3.1-70b-instruct-q4",
        display_name="Llama 3.1 70B (on-prem, 4-bit)",
        context_window=32768,
        data_classes=["public", "internal", "confidential", "pii"],
        notes="Proposed for PII workloads; quality below the bar on the golden set.",
    )
    services.model_decide(
        actor=admin,
        model=llama,
        decision="reject",
        comment="No eval evidence and a floating id; re-propose a pinned build with a run.",
    )
    stdout.write(f"{org.slug}: catalog: {len(models)} model versions")
