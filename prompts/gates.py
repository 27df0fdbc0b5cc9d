"""Approval gates: small checks the approval service runs before an "approve" counts.

A gate takes the GateContext and returns a Block (rule name, message, whether an admin may
proceed through break-glass) or None. Add a gate by appending to APPROVAL_GATES — e.g. a
red-team run or a legal sign-off — without touching the approval service."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .models import Approval, PromptVersion


@dataclass(frozen=True)
class Block:
    rule: str
    message: str
    overridable: bool = False  # an admin may proceed with a written break-glass reason


@dataclass
class GateContext:
    actor: object
    version: PromptVersion
    author_ids: set[int] = field(default_factory=set)


Gate = Callable[[GateContext], Block | None]


def gate_four_eyes(ctx: GateContext) -> Block | None:
    if ctx.actor.user_id in ctx.author_ids:
        return Block(
            "four_eyes",
            "Four eyes: an author of a version may not approve it (a version proposed through "
            "a machine key or a git sync counts the key's creator and the commit author).",
            overridable=True,
        )
    return None


def gate_no_open_objection(ctx: GateContext) -> Block | None:
    open_objections = (
        Approval.objects.filter(
            version=ctx.version,
            decision__in=[Approval.Decision.REQUEST_CHANGES, Approval.Decision.REJECT],
            retracted_at__isnull=True,
        )
        .exclude(user_id=ctx.actor.user_id)
        .select_related("user")
    )
    names = sorted({a.user.get_username() for a in open_objections})
    if names:
        return Block(
            "open_objection",
            f"Open objection: {', '.join(names)} requested changes or rejected this version; "
            "it is blocked until they retract or a newer version supersedes it.",
        )
    return None


def gate_eval_passed(ctx: GateContext) -> Block | None:
    # The link's facts are checked again here: a passing link counts only when its run
    # recorded judging exactly this content on this version's pinned model.
    version = ctx.version
    passing = version.eval_links.filter(
        passed=True,
        eval_run__subject_content_hash=version.content_hash,
        eval_run__model_id=version.model.model_id,
    ).exclude(eval_run__subject_content_hash="")
    if not passing.exists():
        return Block(
            "eval_gate",
            "Eval gate: approval needs an eval run of exactly this version that passes the "
            "prompt's eval policy.",
            overridable=True,
        )
    return None


APPROVAL_GATES: list[Gate] = [gate_four_eyes, gate_no_open_objection, gate_eval_passed]


def run_gates(ctx: GateContext, gates: list[Gate] | None = None) -> list[Block]:
    blocks = []
    for gate in APPROVAL_GATES if gates is None else gates:
        block = gate(ctx)
        if block is not None:
            blocks.append(block)
    return blocks
