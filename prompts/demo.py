"""Demo data for the prompt registry, through the services: `support-reply` (v1..v3, v2 in
production, v3 in review), `summarize-ticket` (v1..v2, v2 blocked by a change request) and
`classify-intent` (chat messages with a tool, a rollback in its history)."""

from __future__ import annotations

from llmops.catalog.models import ModelVersion
from llmops.tenancy.actor import Actor
from llmops.tenancy.models import Membership

from . import services
from .models import Prompt

PREFERRED_MODELS = ("claude-sonnet-4-5-20250929", "gpt-4o-2024-08-06", "claude-3-5-haiku-20241022")


def _actor(org, user) -> Actor:
    role = Membership.objects.for_org(org).filter(user=user).values_list("role", flat=True).first()
    return Actor(org=org, user=user, role=role)


def _models(org) -> list[str]:
    """Deployable model ids from the catalog's demo; a catalog without any gets one."""
    deployable = list(
        ModelVersion.objects.for_org(org)
        .filter(status__in=("approved", "deprecated"), retirement_date__isnull=True)
        .values_list("model_id", flat=True)
    )
    ordered = [m for m in PREFERRED_MODELS if m in deployable] + sorted(
        m for m in deployable if m not in PREFERRED_MODELS
    )
    if not ordered:
        # Only when the catalog seeded nothing usable: the prompts demo needs one model.
        ModelVersion.objects.get_or_create(
            organization=org,
            model_id=PREFERRED_MODELS[0],
            defaults={
                "provider": "anthropic",
                "status": "approved",
                "display_name": "Claude Sonnet 4.5",
            },
        )
        ordered = [PREFERRED_MODELS[0]]
    return ordered


def _eval(actor, version, passed: int, failed: int, commit: str):
    results = [{"input": {"case": i}, "passed": True, "score": 1} for i in range(passed)]
    results += [
        {"input": {"case": passed + i}, "passed": False, "score": 0, "reason": "missed a fact"}
        for i in range(failed)
    ]
    services.version_record_eval_run(
        actor=actor,
        version=version,
        data={"tool": "promptfoo" if failed else "custom", "results": results, "commit": commit},
    )


def seed(*, org, users, stdout) -> None:
    if Prompt.objects.for_org(org).exists():
        return
    m1, m2, admin = (_actor(org, users[k]) for k in ("maint1", "maint2", "admin"))
    models = _models(org)
    main, alt = models[0], models[-1]

    # support-reply: v1, v2 (production), v3 (in review, passing eval, waiting for maint2)
    p = services.prompt_create(
        actor=m1,
        name="support-reply",
        description="First reply to a **customer support** e-mail. Tone: warm, brief, no promises.",
        tags=["support", "email"],
    )
    services.prompt_owner_grant(actor=admin, prompt=p, username=users["maint2"].username)
    base = (
        "You are the support assistant of {{ company }}.\n"
        "Reply to {{ customer_name }} about: {{ ticket_body }}\n"
    )
    v1, _ = services.version_create(
        actor=m1,
        prompt=p,
        model=main,
        template=base,
        params={"temperature": 0.3},
        message="First version.",
    )
    _eval(m1, v1, 18, 2, "a1b2c3d")
    services.version_review(actor=m2, version=v1, decision="approve", comment="Reads well.")
    services.label_deploy(actor=m2, prompt=p, label="production", version=v1, reason="Launch")
    v2, _ = services.version_create(
        actor=m2,
        prompt=p,
        model=main,
        template=base + "Never promise refunds; link the policy at {{ policy_url }}.\n",
        params={"temperature": 0.2, "max_tokens": 600},
        message="Stop promising refunds (INC-3).",
    )
    _eval(m2, v2, 19, 1, "b2c3d4e")
    services.version_review(actor=m1, version=v2, decision="approve", comment="Good catch.")
    services.label_deploy(actor=m1, prompt=p, label="production", version=v2, reason="Refund fix")
    v3, _ = services.version_create(
        actor=m1,
        prompt=p,
        model=alt,
        template=base
        + "Never promise refunds; link the policy at {{ policy_url }}.\nSign as {{ agent_name }}.\n",
        params={"temperature": 0.2, "max_tokens": 600},
        message="Sign replies with the agent's name; try the cheaper model.",
    )
    _eval(m1, v3, 20, 0, "c3d4e5f")
    services.label_deploy(actor=m1, prompt=p, label="staging", version=v3, reason="Try on staging")

    # summarize-ticket: v1 in production, v2 blocked by a change request and a failing run
    s = services.prompt_create(
        actor=m2,
        name="summarize-ticket",
        description="One-paragraph summary for the agent.",
        tags=["support"],
    )
    services.prompt_owner_grant(actor=admin, prompt=s, username=users["maint1"].username)
    s1, _ = services.version_create(
        actor=m2,
        prompt=s,
        model=main,
        template="Summarize this ticket in 3 sentences for an agent:\n{{ ticket_body }}",
        params={"temperature": 0},
    )
    _eval(m2, s1, 10, 0, "d4e5f6a")
    services.version_review(actor=m1, version=s1, decision="approve", comment="")
    services.label_deploy(actor=m1, prompt=s, label="production", version=s1, reason="Launch")
    s2, _ = services.version_create(
        actor=m2,
        prompt=s,
        model=main,
        template="Summarize this ticket in 2 bullet points:\n{{ ticket_body }}\nLanguage: {{ locale }}",
        params={"temperature": 0},
        message="Bullets, localized.",
    )
    _eval(m2, s2, 6, 4, "e5f6a7b")
    services.version_review(
        actor=m1,
        version=s2,
        decision="request_changes",
        comment="Bullets lose the customer's ask; the eval run fails on 4 cases.",
    )

    # classify-intent: chat messages with a tool; production moved to v2 and rolled back
    c = services.prompt_create(
        actor=m1, name="classify-intent", description="Route inbound messages.", tags=["routing"]
    )
    services.prompt_owner_grant(actor=admin, prompt=c, username=users["maint2"].username)
    tool = {
        "name": "route_ticket",
        "description": "Send the ticket to a queue",
        "parameters": {
            "type": "object",
            "properties": {"queue": {"type": "string", "enum": ["billing", "tech", "sales"]}},
            "required": ["queue"],
        },
    }
    versions = []
    for text in (
        "Classify the message into billing, tech or sales.",
        "Classify; when unsure, pick tech.",
    ):
        v, _ = services.version_create(
            actor=m1,
            prompt=c,
            model=main,
            messages=[
                {"role": "system", "content": text},
                {"role": "user", "content": "{{ message }}"},
            ],
            tools=[tool],
            params={"temperature": 0},
        )
        _eval(m1, v, 25, 0, "f6a7b8c")
        services.version_review(actor=m2, version=v, decision="approve", comment="ok")
        versions.append(v)
    services.label_deploy(
        actor=m2, prompt=c, label="production", version=versions[0], reason="Launch"
    )
    services.label_deploy(
        actor=m2, prompt=c, label="production", version=versions[1], reason="Fewer misroutes"
    )
    services.label_deploy(
        actor=m2,
        prompt=c,
        label="production",
        version=versions[0],
        reason="Rollback: tech queue flooded",
    )
    stdout.write(f"{org.slug}: prompts support-reply, summarize-ticket, classify-intent")
