"""Every governance rule of the prompt registry, at the service layer."""

from __future__ import annotations

import pytest

from llmops.audit.models import AuditEvent
from llmops.common.errors import InvalidInput, InvalidTransition, NotPermitted, PolicyViolation
from llmops.notify.models import Notification
from llmops.tenancy import guardian
from llmops.tenancy.actor import Actor
from llmops.tenancy.services import api_key_create
from prompts import services
from prompts.models import Approval, PromptVersion

from .conftest import (
    MODEL_ID,
    TEMPLATE,
    approve,
    key_info,
    make_model,
    make_prompt,
    pass_eval,
    prompt_yaml,
    propose,
)

S = PromptVersion.Status


def _audit_count(world):
    return AuditEvent.objects.filter(organization=world.org).count()


# -- prompts and owners -------------------------------------------------------------------


def test_creator_becomes_first_owner_with_both_grants(acme, model):
    prompt = services.prompt_create(actor=acme.actor("maint1"), name="greeting")
    maint1 = acme.users["maint1"]
    assert guardian.has_grant(maint1, "approve_prompt", prompt)
    assert guardian.has_grant(maint1, "deploy_prompt", prompt)
    assert not guardian.has_grant(acme.users["maint2"], "approve_prompt", prompt)
    assert AuditEvent.objects.filter(action="prompt.created", target_id=str(prompt.pk)).exists()


@pytest.mark.parametrize("name", ["Bad Name", "", "-x", "new", "a" * 101])
def test_prompt_name_is_validated(acme, name):
    with pytest.raises(InvalidInput) as exc:
        services.prompt_create(actor=acme.actor("maint1"), name=name)
    assert exc.value.field == "name"


def test_prompt_name_unique_per_org_not_globally(acme, globex, model):
    services.prompt_create(actor=acme.actor("maint1"), name="x")
    services.prompt_create(actor=globex.actor("maint1"), name="x")
    with pytest.raises(InvalidInput):
        services.prompt_create(actor=acme.actor("maint2"), name="x")


def test_viewer_and_reviewer_cannot_create_or_propose(acme, prompt):
    for who in ("viewer", "reviewer1"):
        with pytest.raises(NotPermitted):
            services.prompt_create(actor=acme.actor(who), name="nope")
        with pytest.raises(NotPermitted):
            propose(acme, prompt, who=who)


def test_owner_grant_to_team_and_revoke(acme, prompt):
    from llmops.tenancy.services import team_add_member, team_create

    team = team_create(actor=acme.actor(), name="support")
    team_add_member(actor=acme.actor(), team=team, username="acme-reviewer1")
    services.prompt_owner_grant(actor=acme.actor(), prompt=prompt, team_id=team.pk)
    assert guardian.has_grant(acme.users["reviewer1"], "approve_prompt", prompt)
    services.prompt_owner_revoke(actor=acme.actor(), prompt=prompt, team_id=team.pk)
    assert not guardian.has_grant(acme.users["reviewer1"], "approve_prompt", prompt)


def test_only_managers_grant(acme, prompt, model):
    other = make_prompt(acme, name="other", owners=("maint2",))
    with pytest.raises(NotPermitted):  # maint1 owns `prompt`, not `other`
        services.prompt_owner_grant(
            actor=acme.actor("maint1"), prompt=other, username="acme-maint1"
        )
    with pytest.raises(InvalidInput):
        services.prompt_owner_grant(actor=acme.actor(), prompt=prompt, username="globex-maint1")


# -- versions -----------------------------------------------------------------------------


def test_versions_are_numbered_and_variables_extracted(acme, prompt):
    v1 = propose(acme, prompt)
    v2 = propose(acme, prompt, template="Hi {{name}} {{ name }} {{ other_1 }}")
    assert (v1.number, v2.number) == (1, 2)
    assert v1.variables == ["customer_name", "topic"]
    assert v2.variables == ["name", "other_1"]
    assert v1.source == "ui" and set(v1.authors.all()) == {acme.users["maint1"]}


def test_identical_content_creates_nothing_and_message_is_not_hashed(acme, prompt):
    v1 = propose(acme, prompt, message="first")
    again, created = services.version_create(
        actor=acme.actor("maint2"),
        prompt=prompt,
        model=MODEL_ID,
        template=TEMPLATE,
        message="other",
    )
    assert not created and again.pk == v1.pk
    assert PromptVersion.objects.filter(prompt=prompt).count() == 1
    v2 = propose(acme, prompt, params={"temperature": 0.3})
    assert v2.content_hash != v1.content_hash


def test_chat_messages(acme, prompt):
    v = propose(
        acme,
        prompt,
        template=None,
        messages=[
            {"role": "system", "content": "You help {{ customer }}."},
            {"role": "user", "content": "{{ question }}"},
        ],
    )
    assert v.is_chat and v.variables == ["customer", "question"]


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"model": "gpt-unknown-2024-01-01"}, "model"),
        ({"template": "Hi {{ not valid }}"}, "template"),
        ({"template": "Hi {{ }}"}, "template"),
        ({"template": "Hi {{ name }}", "variables": ["other"]}, "template"),
        ({"template": None, "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        ({"template": None, "messages": [{"role": "user"}]}, "messages[0].content"),
        ({"template": None, "messages": "hello"}, "messages"),
        ({"messages": [{"role": "user", "content": "x"}]}, "template"),
        ({"params": {"temperature": 7}}, "params.temperature"),
        ({"params": [1]}, "params"),
        ({"tools": [{"name": "lookup", "parameters": {"type": "string"}}]}, "tools[0].parameters"),
        (
            {"tools": [{"name": "lookup", "parameters": {"type": "object", "properties": 3}}]},
            "tools[0].parameters",
        ),
        ({"tools": [{"name": "lookup"}]}, "tools[0].parameters"),
        ({"tools": [{"name": "bad name", "parameters": {"type": "object"}}]}, "tools[0].name"),
    ],
)
def test_bad_content_is_400_naming_the_field(acme, prompt, kwargs, field):
    args = {"template": TEMPLATE, "model": MODEL_ID, **kwargs}
    before = _audit_count(acme)
    with pytest.raises(InvalidInput) as exc:
        services.version_create(actor=acme.actor("maint1"), prompt=prompt, **args)
    assert field in exc.value.details["fields"], exc.value.details
    assert not PromptVersion.objects.filter(prompt=prompt).exists()
    assert _audit_count(acme) == before


def test_valid_tool_schema_is_accepted(acme, prompt):
    tools = [
        {
            "name": "lookup_order",
            "description": "Find an order",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "string"}},
                "required": ["order_id"],
            },
        }
    ]
    assert propose(acme, prompt, tools=tools).tools == tools


def test_model_from_another_org_is_not_in_the_catalog(acme, globex, prompt):
    make_model(globex, model_id="only-globex-2025-01-01")
    with pytest.raises(InvalidInput) as exc:
        propose(acme, prompt, model="only-globex-2025-01-01")
    assert exc.value.field == "model"


def test_submitting_a_newer_version_supersedes_the_one_in_review(acme, prompt):
    v1 = propose(acme, prompt)
    v2 = propose(acme, prompt, template="v2 {{ x }}")
    v1.refresh_from_db()
    assert v1.status == S.SUPERSEDED and v2.status == S.IN_REVIEW
    pass_eval(acme, v1)
    with pytest.raises(InvalidTransition):
        approve(acme, v1)


def test_draft_then_submit(acme, prompt):
    v = propose(acme, prompt, submit=False)
    assert v.status == S.DRAFT
    with pytest.raises(InvalidTransition):
        approve(acme, v)
    services.version_submit(actor=acme.actor("maint1"), version=v)
    v.refresh_from_db()
    assert v.status == S.IN_REVIEW


def test_reviewers_are_notified_of_a_new_version_but_not_the_author(acme, prompt):
    propose(acme, prompt)
    notified = set(
        Notification.objects.filter(kind="prompts.review_requested", channel="inbox").values_list(
            "recipient__username", flat=True
        )
    )
    assert notified == {"acme-maint2"}


def test_withdraw(acme, prompt):
    v = propose(acme, prompt)
    with pytest.raises(NotPermitted):
        services.version_withdraw(actor=acme.actor("viewer"), version=v)
    services.version_withdraw(actor=acme.actor("maint1"), version=v)
    v.refresh_from_db()
    assert v.status == S.WITHDRAWN
    with pytest.raises(InvalidTransition):
        services.version_withdraw(actor=acme.actor("maint1"), version=v)


# -- approvals and gates ------------------------------------------------------------------


def test_approval_by_another_owner_with_passing_eval(acme, prompt):
    v = propose(acme, prompt)
    pass_eval(acme, v)
    approve(acme, v)
    v.refresh_from_db()
    assert v.status == S.APPROVED and not v.break_glass_reason
    author_notes = Notification.objects.filter(
        kind="prompts.approve", recipient=acme.users["maint1"]
    )
    assert author_notes.exists()


def test_self_approval_is_409_and_changes_nothing(acme, prompt):
    v = propose(acme, prompt)
    pass_eval(acme, v)
    before = _audit_count(acme)
    with pytest.raises(PolicyViolation) as exc:
        approve(acme, v, who="maint1")
    assert exc.value.code == "four_eyes" and "Four eyes" in exc.value.message
    v.refresh_from_db()
    assert v.status == S.IN_REVIEW
    assert not Approval.objects.filter(version=v).exists()
    assert _audit_count(acme) == before


def test_admin_self_approval_is_also_blocked_without_break_glass(acme, prompt):
    v = propose(acme, prompt, who="admin")
    pass_eval(acme, v)
    with pytest.raises(PolicyViolation) as exc:
        approve(acme, v, who="admin")
    assert exc.value.code == "four_eyes"


def test_machine_key_counts_its_creator_as_author(acme, prompt):
    row, _ = api_key_create(actor=acme.actor("admin"), name="ci", scopes=["prompts:write"])
    assert row.created_by == acme.users["admin"]
    from llmops.tenancy.authentication import actor_for_key  # noqa: F401

    machine = Actor(org=acme.org, key=key_info(row))
    v, _ = services.version_create(
        actor=machine, prompt=prompt, model=MODEL_ID, template=TEMPLATE, source="api"
    )
    assert set(v.authors.all()) == {acme.users["admin"]}
    pass_eval(acme, v)
    with pytest.raises(PolicyViolation) as exc:
        approve(acme, v, who="admin")
    assert exc.value.code == "four_eyes"
    approve(acme, v, who="maint2")
    v.refresh_from_db()
    assert v.status == S.APPROVED


def test_sync_commit_author_counts_as_author(acme, prompt):
    acme.users["maint2"].email = "Maint2@Example.com"
    acme.users["maint2"].save()
    files = [{"path": "prompts/support-reply.yaml", "content": prompt_yaml("support-reply")}]
    results = services.prompts_sync(
        actor=acme.actor("maint1"), files=files, commit="abc123", author="maint2@example.com"
    )
    v = PromptVersion.objects.get(prompt=prompt, number=results[0]["number"])
    assert v.source == "git" and v.source_commit == "abc123"
    assert v.source_path == "prompts/support-reply.yaml"
    assert {u.username for u in v.authors.all()} == {"acme-maint1", "acme-maint2"}
    assert v.author_emails == ["maint2@example.com"]
    pass_eval(acme, v)
    with pytest.raises(PolicyViolation) as exc:
        approve(acme, v, who="maint2")
    assert exc.value.code == "four_eyes"


def test_approving_without_a_passing_eval_is_409(acme, prompt):
    v = propose(acme, prompt)
    with pytest.raises(PolicyViolation) as exc:
        approve(acme, v)
    assert exc.value.code == "eval_gate" and "Eval gate" in exc.value.message
    pass_eval(acme, v, passed=False)
    with pytest.raises(PolicyViolation):
        approve(acme, v)
    v.refresh_from_db()
    assert v.status == S.IN_REVIEW and not v.approvals.exists()
    pass_eval(acme, v, passed=True)
    approve(acme, v)
    v.refresh_from_db()
    assert v.status == S.APPROVED


def test_eval_of_another_version_does_not_count(acme, prompt):
    v1 = propose(acme, prompt, submit=False)
    pass_eval(acme, v1)
    v2 = propose(acme, prompt, template="v2 {{ a }}")
    with pytest.raises(PolicyViolation):
        approve(acme, v2)


def test_eval_verdict_uses_the_prompt_policy_override(acme, prompt):
    from llmops.evals.services import policy_save

    strict = policy_save(
        actor=acme.actor("admin"),
        name="strict",
        thresholds=[{"metric": "pass_rate", "op": ">=", "value": 1.0}],
    )
    services.prompt_update(actor=acme.actor("maint1"), prompt=prompt, eval_policy=strict.pk)
    v = propose(acme, prompt)
    _, link = services.version_record_eval_run(
        actor=acme.actor("maint1"),
        version=v,
        data={"tool": "custom", "results": [{"passed": True}] * 19 + [{"passed": False}]},
    )
    assert not link.passed  # 0.95 passes the default 0.9 but not this prompt's policy
    assert link.verdict["policy"]["name"] == "strict"


def test_request_changes_blocks_until_retracted(acme, prompt):
    v = propose(acme, prompt)
    pass_eval(acme, v)
    objection = services.version_review(
        actor=acme.actor("admin"), version=v, decision="request_changes", comment="tone"
    )
    with pytest.raises(PolicyViolation) as exc:
        approve(acme, v)
    assert exc.value.code == "open_objection" and "acme-admin" in exc.value.message
    with pytest.raises(NotPermitted):  # only the decider retracts
        services.approval_retract(actor=acme.actor("maint2"), approval=objection)
    services.approval_retract(actor=acme.actor("admin"), approval=objection)
    approve(acme, v)
    v.refresh_from_db()
    assert v.status == S.APPROVED


def test_request_changes_cannot_be_overridden_by_break_glass(acme, prompt):
    v = propose(acme, prompt)
    pass_eval(acme, v)
    services.version_review(
        actor=acme.actor("maint2"), version=v, decision="request_changes", comment="no"
    )
    with pytest.raises(PolicyViolation) as exc:
        approve(acme, v, who="admin", break_glass_reason="hurry")
    assert exc.value.code == "open_objection"


def test_reject_then_retract_returns_to_review(acme, prompt):
    v = propose(acme, prompt)
    rejection = services.version_review(
        actor=acme.actor("maint2"), version=v, decision="reject", comment="wrong"
    )
    v.refresh_from_db()
    assert v.status == S.REJECTED
    assert Notification.objects.filter(
        kind="prompts.reject", recipient=acme.users["maint1"]
    ).exists()
    services.approval_retract(actor=acme.actor("maint2"), approval=rejection)
    v.refresh_from_db()
    assert v.status == S.IN_REVIEW


def test_a_newer_version_supersedes_a_blocked_one(acme, prompt):
    v1 = propose(acme, prompt)
    services.version_review(
        actor=acme.actor("maint2"), version=v1, decision="request_changes", comment="x"
    )
    v2 = propose(acme, prompt, template="better {{ a }}")
    v1.refresh_from_db()
    assert v1.status == S.SUPERSEDED
    pass_eval(acme, v2)
    approve(acme, v2)
    v2.refresh_from_db()
    assert v2.status == S.APPROVED


def test_decisions_other_than_approve_need_a_comment_and_valid_decision(acme, prompt):
    v = propose(acme, prompt)
    with pytest.raises(InvalidInput) as exc:
        services.version_review(actor=acme.actor("maint2"), version=v, decision="reject")
    assert exc.value.field == "comment"
    with pytest.raises(InvalidInput) as exc:
        services.version_review(actor=acme.actor("maint2"), version=v, decision="lgtm")
    assert exc.value.field == "decision"


def test_required_approvals_from_distinct_people(acme, model):
    prompt = make_prompt(
        acme, name="two", owners=("maint1", "maint2", "reviewer1"), required_approvals=2
    )
    v = propose(acme, prompt)
    pass_eval(acme, v)
    approve(acme, v, who="maint2")
    approve(acme, v, who="maint2")  # the same person again replaces their own decision
    v.refresh_from_db()
    assert v.status == S.IN_REVIEW
    assert v.approvals.filter(retracted_at__isnull=True).count() == 1
    approve(acme, v, who="admin")
    v.refresh_from_db()
    assert v.status == S.APPROVED


def test_approver_needs_the_grant(acme, prompt, model):
    other = make_prompt(acme, name="solo", owners=("maint1",))
    v = propose(acme, other)
    pass_eval(acme, v)
    with pytest.raises(NotPermitted):
        approve(acme, v, who="maint2")
    with pytest.raises(NotPermitted):
        approve(acme, v, who="viewer")


def test_break_glass_by_admin_is_marked_audited_and_notified(acme, prompt):
    v = propose(acme, prompt, who="admin")
    with pytest.raises(NotPermitted):  # maintainers never break glass
        approve(acme, v, who="maint2", break_glass_reason="please")
    approve(acme, v, who="admin", break_glass_reason="Incident INC-7: hotfix, sole admin on call")
    v.refresh_from_db()
    assert v.status == S.APPROVED
    assert v.break_glass_reason.startswith("Incident INC-7")
    event = AuditEvent.objects.filter(action="prompt.version_reviewed").latest("seq")
    assert event.details["break_glass_reason"].startswith("Incident")
    assert set(event.details["overridden"]) == {"four_eyes", "eval_gate"}
    assert Notification.objects.filter(
        kind="prompts.break_glass", recipient=acme.users["admin"]
    ).exists()


# -- labels and deployments ---------------------------------------------------------------


@pytest.mark.parametrize("bad", ["", None, 2.5, "2.5", True, 0, 11, "two", [2]])
def test_required_approvals_must_be_a_whole_number_from_1_to_10(acme, model, bad):
    with pytest.raises(InvalidInput) as exc:
        services.prompt_create(actor=acme.actor("maint1"), name="p", required_approvals=bad)
    assert exc.value.field == "required_approvals"
    assert (
        services.prompt_create(
            actor=acme.actor("maint1"), name="q", required_approvals=" 3 "
        ).required_approvals
        == 3
    )


def test_text_fields_that_are_not_text_name_the_field(acme, prompt):
    v = propose(acme, prompt)
    cases = [
        (
            "comment",
            lambda: services.version_review(
                actor=acme.actor("maint2"), version=v, decision="reject", comment=123
            ),
        ),
        (
            "reason",
            lambda: services.label_deploy(
                actor=acme.actor("maint2"), prompt=prompt, label="staging", version=v, reason=["x"]
            ),
        ),
        ("message", lambda: propose(acme, prompt, template="Other {{ x }}", message="a\x00b")),
        ("message", lambda: propose(acme, prompt, template="Other {{ x }}", message="m" * 5001)),
    ]
    for field, call in cases:
        with pytest.raises(InvalidInput) as exc:
            call()
        assert exc.value.field == field
    assert PromptVersion.objects.filter(prompt=prompt).count() == 1
