"""Demo data for incidents (runs after the other apps' demos): a runbook for every category
and incidents in several states, made through the services so timelines, checklists and
audit events are real."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from llmops.tenancy.actor import Actor
from llmops.tenancy.models import Role

from . import services
from .models import Category

RUNBOOKS = {
    "hallucination": (
        "Hallucination reaching users",
        "Wrong facts shown to users as if true. Contain first, then fix the prompt or model, "
        "then make sure an eval catches it next time.",
        [
            ("Collect two or three failing generations as evidence", "commander", ""),
            ("Estimate users affected from traces", "", ""),
            (
                "Roll the prompt label back to the last approved version",
                "maintainer",
                "rollback_prompt",
            ),
            ("Add the failure to the regression dataset", "maintainer", "add_eval_case"),
            ("Tell support what users may have been told", "commander", ""),
        ],
    ),
    "prompt_injection": (
        "Prompt injection / jailbreak",
        "Someone steered the model outside its instructions. Check what tools it could reach.",
        [
            ("Identify the injected input and the user", "commander", ""),
            ("Check tool calls made in the affected sessions", "", ""),
            ("Block or rate-limit the source", "maintainer", ""),
            (
                "Harden the system prompt and add the attack as an eval case",
                "maintainer",
                "add_eval_case",
            ),
        ],
    ),
    "harmful_output": (
        "Harmful or policy-violating output",
        "Output that breaks the content policy reached a user.",
        [
            ("Capture the output and the conversation", "commander", ""),
            ("Disable the feature flag if harm continues", "maintainer", ""),
            ("Add the failure to the safety dataset", "maintainer", "add_eval_case"),
            ("Assess reporting duties (serious incident?)", "admin", ""),
        ],
    ),
    "data_disclosure": (
        "Sensitive data disclosure",
        "Personal or confidential data appeared in output. Treat as a security incident.",
        [
            ("Scope which data and which users", "commander", ""),
            ("Involve the privacy officer", "admin", ""),
            ("Suspend the model version if it is the source", "admin", "suspend_model"),
        ],
    ),
    "excessive_agency": (
        "Excessive agency / tool misuse",
        "An agent took actions it should not have.",
        [
            ("Revoke the agent's tool credentials", "maintainer", ""),
            ("List every action taken and undo what can be undone", "commander", ""),
        ],
    ),
    "drift": (
        "Drift after a model or prompt change",
        "Quality dropped after a change. Compare eval runs before and after.",
        [
            ("Find the change (deployment or model update) from the timeline", "commander", ""),
            ("Roll back the label", "maintainer", "rollback_prompt"),
            ("Re-run the eval suite on both versions", "maintainer", ""),
        ],
    ),
    "cost_spike": (
        "Cost spike / runaway agent",
        "Token spend far above normal.",
        [
            ("Find the prompt and user driving the spend in traces", "commander", ""),
            ("Apply a rate limit or kill switch", "maintainer", ""),
        ],
    ),
    "outage": (
        "Latency or vendor outage",
        "The provider is slow or down.",
        [
            ("Check the provider status page", "", ""),
            ("Fail over to the backup model", "maintainer", ""),
        ],
    ),
    "other": (
        "General incident",
        "Anything else.",
        [("Write down what is known", "commander", "")],
    ),
}


def _steps(rows):
    return [{"text": t, "role": r, "action": a} for t, r, a in rows]


def _link_demo_evidence(actor, incident) -> None:
    """Cite what the other apps' demos made, when they made it: a support-reply generation,
    the prompt version in production and the regression dataset."""
    from llmops.evals.models import EvalDataset
    from llmops.traces.models import Generation
    from prompts.models import Label

    generation = (
        Generation.objects.for_org(incident.organization)
        .filter(prompt_name="support-reply")
        .order_by("-created_at")
        .first()
    )
    if generation is not None:
        services.evidence_link(actor=actor, incident=incident, kind="generation", obj=generation)
    label = (
        Label.objects.for_org(incident.organization)
        .filter(prompt__name="support-reply", name="production", version__isnull=False)
        .select_related("version__prompt", "version__model")
        .first()
    )
    if label is not None:
        services.evidence_link(
            actor=actor, incident=incident, kind="prompt_version", obj=label.version
        )
    dataset = EvalDataset.objects.for_org(incident.organization).order_by("name").first()
    if dataset is not None:
        services.incident_add_eval_case(
            actor=actor,
            incident=incident,
            dataset=dataset,
            input={"question": "Can I get a refund after 90 days?"},
            expected="Refunds are available within 30 days of purchase.",
            criteria="Must state the 30-day window; must not promise longer.",
        )


def seed(*, org, users, stdout) -> None:
    admin = Actor(org=org, user=users["admin"], role=Role.ADMIN)
    m1 = Actor(org=org, user=users["maint1"], role=Role.MAINTAINER)
    m2 = Actor(org=org, user=users["maint2"], role=Role.MAINTAINER)
    r1 = Actor(org=org, user=users["reviewer1"], role=Role.REVIEWER)
    system = Actor.system_for(org)
    for category, (title, body, rows) in RUNBOOKS.items():
        services.runbook_create(
            actor=m1, title=title, body=body, steps=_steps(rows), category=category
        )
    services.runbook_create(
        actor=m2,
        title="Severe incident basics",
        body="For every SEV1/SEV2: a commander, a status update every 30 minutes, a postmortem.",
        steps=_steps(
            [
                ("Name a commander", "", ""),
                ("Post a status update every 30 minutes", "commander", ""),
                ("Schedule the postmortem", "commander", ""),
            ]
        ),
        min_severity="SEV2",
    )
    now = timezone.now()

    # 1. An alert in triage, still pending severity, with a flood of repeats.
    for _ in range(3):
        services.alert_receive(
            actor=system,
            dedupe_key=f"{org.slug}/support-reply/cost",
            title="Token spend 6x normal on support-reply",
            category="cost_spike",
            details={"spend_usd_per_hour": 184.2, "baseline": 31.0},
        )

    # 2. A hallucination being investigated by maint1.
    inc = services.incident_open(
        actor=r1,
        title="Support bot promises 365-day refunds",
        category="hallucination",
        severity="SEV2",
        summary="Reviewers flagged answers quoting a **365-day** refund window; policy is 30 days.",
        detected_at=now - timedelta(hours=6),
        users_affected=140,
    )
    services.incident_set_commander(actor=m1, incident=inc, user=users["maint1"])
    services.incident_transition(
        actor=m1, incident=inc, to="investigating", at=now - timedelta(hours=5, minutes=40)
    )
    services.incident_note(actor=m1, incident=inc, note="Started after the v3 deploy yesterday.")
    _link_demo_evidence(m1, inc)
    first = inc.checklists.first()
    if first is not None:
        step = first.steps.order_by("position").first()
        services.checklist_step_set(actor=m1, step=step, done=True)

    # 3. A jailbreak that was mitigated.
    inc = services.incident_open(
        actor=m2,
        title="Jailbreak makes classify-intent reveal its system prompt",
        category="prompt_injection",
        severity="SEV3",
        detected_at=now - timedelta(days=2),
    )
    services.incident_transition(
        actor=m2,
        incident=inc,
        to="investigating",
        at=now - timedelta(days=2) + timedelta(minutes=25),
    )
    services.incident_transition(
        actor=m2,
        incident=inc,
        to="mitigated",
        note="Input filter for the known payload deployed.",
        at=now - timedelta(days=1, hours=20),
    )

    # 4. A closed SEV2 outage with a postmortem and owned action items.
    inc = services.incident_open(
        actor=m1,
        title="Provider 5xx storm, answers timing out",
        category="outage",
        severity="SEV2",
        detected_at=now - timedelta(days=12),
        cost_impact_usd="420.00",
    )
    services.incident_set_commander(actor=m1, incident=inc, user=users["maint2"])
    start = now - timedelta(days=12)
    services.incident_transition(
        actor=m2, incident=inc, to="investigating", at=start + timedelta(minutes=9)
    )
    services.incident_transition(
        actor=m2,
        incident=inc,
        to="mitigated",
        note="Failed over to the backup model.",
        at=start + timedelta(minutes=52),
    )
    services.incident_transition(
        actor=m2, incident=inc, to="resolved", at=start + timedelta(hours=3)
    )
    services.postmortem_save(
        actor=m2,
        incident=inc,
        body=(
            "## Impact\n\nAbout 2,000 chats timed out over 50 minutes.\n\n"
            "## Root cause\n\nThe provider's region had an outage; we had no automatic failover.\n\n"
            "## What went well\n\nAlerting fired within two minutes.\n"
        ),
    )
    services.action_item_create(
        actor=m2,
        incident=inc,
        title="Automatic failover on 5xx rate",
        owner=users["maint1"],
        due=timezone.localdate() + timedelta(days=14),
    )
    services.action_item_create(
        actor=m2,
        incident=inc,
        title="Runbook: provider outage drill",
        owner=users["maint2"],
        due=timezone.localdate() - timedelta(days=2),
    )
    services.incident_transition(actor=m2, incident=inc, to="closed")

    # 5. A false alarm, cancelled; and a duplicate.
    false_alarm = services.incident_open(
        actor=r1,
        title="Odd tone in greetings",
        category="other",
        detected_at=now - timedelta(days=4),
    )
    services.incident_transition(
        actor=m1, incident=false_alarm, to="cancelled", note="Expected A/B test copy."
    )
    dup = services.incident_open(
        actor=r1,
        title="Refund answers wrong again",
        category="hallucination",
        detected_at=now - timedelta(hours=2),
    )
    services.incident_transition(actor=m1, incident=dup, to="duplicate", duplicate_of=2)

    # 6. A serious incident clock on a data-disclosure case (admin).
    inc = services.incident_open(
        actor=admin,
        title="Order history of another customer shown",
        category="data_disclosure",
        severity="SEV1",
        detected_at=now - timedelta(hours=20),
        users_affected=3,
    )
    services.incident_mark_serious(
        actor=admin, incident=inc, kind="other", aware_at=now - timedelta(hours=19)
    )
    stdout.write(
        f"{org.slug}: incidents: {len(Category.values) + 1} runbooks, 7 incidents in several states"
    )
