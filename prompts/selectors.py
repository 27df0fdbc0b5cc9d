"""Tenant-scoped reads of the prompt registry: lists with filters, one prompt or version
by name and number, review inboxes, model risks behind labels, and resolve payloads."""

from __future__ import annotations

import difflib
import hashlib
import json
from datetime import date

from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone

from llmops.catalog.models import ModelVersion
from llmops.common.errors import NotFound
from llmops.tenancy import guardian
from llmops.tenancy.actor import Actor
from llmops.tenancy.models import Team
from llmops.tenancy.policy import restrict

from . import cache as resolve_cache
from .models import (
    Approval,
    Deployment,
    Label,
    Prompt,
    PromptVersion,
    PromptVersionEvalRun,
)

Status = PromptVersion.Status
ModelStatus = ModelVersion.Status
# A model in one of these states must not serve a label any more.
OUT_OF_SERVICE = (ModelStatus.SUSPENDED, ModelStatus.RETIRED, ModelStatus.REJECTED)
RETIRING_DAYS = (7, 30)


def prompt_get(*, org, name: str) -> Prompt:
    prompt = (
        Prompt.objects.for_org(org)
        .select_related("eval_policy", "organization")
        .filter(name=name)
        .first()
    )
    if prompt is None:
        raise NotFound(f"No prompt named '{name}'.")
    return prompt


def version_get(*, org, prompt: Prompt, number) -> PromptVersion:
    try:
        number = int(number)
    except (TypeError, ValueError):
        raise NotFound("No such version.")
    version = (
        PromptVersion.objects.for_org(org)
        .filter(prompt=prompt, number=number)
        .select_related("prompt", "prompt__organization", "model")
        .first()
    )
    if version is None:
        raise NotFound(f"{prompt.name} has no version {number}.")
    return version


def versions_needing_review(*, actor: Actor) -> QuerySet[PromptVersion]:
    """Versions in review the actor may approve: not their own, not already decided by them."""
    if not actor.is_human:
        return PromptVersion.objects.none()
    prompts = restrict(actor, "prompt.approve", Prompt.objects.for_org(actor.org))
    return (
        PromptVersion.objects.for_org(actor.org)
        .filter(status=Status.IN_REVIEW, prompt__in=prompts.values("pk"))
        .exclude(authors=actor.user)
        .exclude(
            Exists(
                Approval.objects.filter(
                    version=OuterRef("pk"), user=actor.user, retracted_at__isnull=True
                )
            )
        )
        .select_related("prompt", "model")
        .order_by("created_at", "id")
    )


def prompt_list(
    *,
    org,
    actor: Actor | None = None,
    query: str = "",
    tag: str = "",
    owner: str = "",
    label_state: str = "",
    needs_my_review: bool = False,
) -> QuerySet[Prompt]:
    """label_state: "production" (has a production label), "none" (no label at all),
    "in_review" (a version waiting), "at_risk" (a labelled version pins a risky model)."""
    qs = Prompt.objects.for_org(org)
    if query:
        qs = qs.filter(Q(name__icontains=query) | Q(description__icontains=query))
    if tag:
        # JSON containment is not portable to SQLite; tags are short lists, match as text.
        qs = qs.filter(tags__icontains=f'"{tag.lower()}"')
    if owner:
        qs = qs.filter(
            Q(promptuserobjectpermission__user__username=owner)
            | Q(promptgroupobjectpermission__group__user__username=owner)
        )
    if label_state == "production":
        qs = qs.filter(labels__name="production", labels__version__isnull=False)
    elif label_state == "none":
        qs = qs.exclude(labels__version__isnull=False)
    elif label_state == "in_review":
        qs = qs.filter(versions__status=Status.IN_REVIEW)
    elif label_state == "at_risk":
        qs = qs.filter(pk__in=_at_risk_prompt_ids(org=org))
    if needs_my_review and actor is not None:
        qs = qs.filter(pk__in=versions_needing_review(actor=actor).values("prompt_id"))
    return (
        qs.distinct()
        .annotate(
            version_count=Count("versions", distinct=True),
            in_review_count=Count(
                "versions", filter=Q(versions__status=Status.IN_REVIEW), distinct=True
            ),
        )
        .prefetch_related(
            Prefetch(
                "labels",
                queryset=Label.objects.filter(version__isnull=False).select_related(
                    "version", "version__model"
                ),
                to_attr="live_labels",
            )
        )
        .order_by("name")
    )


def model_risk(model: ModelVersion, *, today: date | None = None) -> dict | None:
    """Why a model behind a label needs attention, or None."""
    today = today or timezone.localdate()
    if model.status in OUT_OF_SERVICE:
        return {"code": model.status, "message": f"model {model.model_id} is {model.status}."}
    if model.retirement_date is not None:
        days = (model.retirement_date - today).days
        if days <= 0:
            return {"code": "retired", "message": f"model {model.model_id} retired."}
        for limit in RETIRING_DAYS:
            if days <= limit:
                return {
                    "code": f"retiring:{model.retirement_date.isoformat()}:{limit}",
                    "message": f"model {model.model_id} retires in {days} day(s), on "
                    f"{model.retirement_date.isoformat()}.",
                }
    if model.status == ModelStatus.DEPRECATED:
        when = f" (retires {model.retirement_date.isoformat()})" if model.retirement_date else ""
        return {"code": "deprecated", "message": f"model {model.model_id} is deprecated{when}."}
    return None


def _at_risk_prompt_ids(*, org) -> list[int]:
    labels = (
        Label.objects.for_org(org)
        .filter(version__isnull=False)
        .select_related("version__model")
        .only("prompt_id", "version__model")
    )
    return sorted({lb.prompt_id for lb in labels if model_risk(lb.version.model)})


def prompt_risks(prompt: Prompt) -> list[dict]:
    """Label risks of a prompt from its prefetched `live_labels` (or a query)."""
    labels = getattr(prompt, "live_labels", None)
    if labels is None:
        labels = list(prompt.labels.filter(version__isnull=False).select_related("version__model"))
    risks = []
    for label in labels:
        risk = model_risk(label.version.model)
        if risk:
            risks.append({"label": label.name, **risk})
    return risks


def prompt_labels(*, prompt: Prompt) -> QuerySet[Label]:
    return prompt.labels.select_related("version", "version__model").order_by("name")


def prompt_versions(*, prompt: Prompt) -> QuerySet[PromptVersion]:
    return (
        prompt.versions.select_related("model")
        .annotate(
            approve_count=Count(
                "approvals",
                filter=Q(
                    approvals__decision=Approval.Decision.APPROVE,
                    approvals__retracted_at__isnull=True,
                ),
            )
        )
        .order_by("-number")
    )


def prompt_deployments(*, prompt: Prompt) -> QuerySet[Deployment]:
    return prompt.deployments.select_related("label", "from_version", "to_version").order_by(
        "-created_at", "-id"
    )


def prompt_owners(*, prompt: Prompt) -> dict:
    """Direct holders of each grant: {"users": [(user, perms)], "teams": [(team, perms)]}."""
    users: dict[int, tuple] = {}
    groups: dict[int, tuple] = {}
    for perm in ("approve_prompt", "deploy_prompt"):
        u_list, g_list = guardian.direct_holders(prompt, perm)
        for u in u_list:
            users.setdefault(u.pk, (u, []))[1].append(perm)
        for g in g_list:
            groups.setdefault(g.pk, (g, []))[1].append(perm)
    teams = {
        t.group_id: t
        for t in Team.objects.for_org(prompt.organization).filter(group_id__in=list(groups))
    }
    return {
        "users": sorted(users.values(), key=lambda x: x[0].username),
        "teams": sorted(
            ((teams[gid], perms) for gid, (_, perms) in groups.items() if gid in teams),
            key=lambda x: x[0].name,
        ),
    }


def approval_get(*, org, version: PromptVersion, approval_id) -> Approval:
    """One decision on this version, in this organization."""
    approval = Approval.objects.for_org(org).filter(pk=approval_id, version=version).first()
    if approval is None:
        raise NotFound("No such decision.")
    return approval


def version_approvals(*, version: PromptVersion) -> QuerySet[Approval]:
    return version.approvals.select_related("user").order_by("created_at", "id")


def version_eval_links(*, version: PromptVersion) -> QuerySet[PromptVersionEvalRun]:
    return version.eval_links.select_related("eval_run", "eval_run__dataset", "policy")


def version_authors(*, version: PromptVersion) -> list:
    return list(version.authors.order_by("username"))


def version_labels(*, version: PromptVersion) -> list[str]:
    return list(version.labels.values_list("name", flat=True))


def version_side_by_side(a: PromptVersion, b: PromptVersion) -> dict:
    """Side-by-side rows (left, right, kind) for content, params, tools and model."""

    def content_text(v: PromptVersion) -> str:
        if v.messages is not None:
            return "\n".join(f"[{m['role']}]\n{m['content']}\n" for m in v.messages)
        return v.template

    def pretty(value) -> str:
        return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)

    sections = []
    for title, left, right in (
        ("Content", content_text(a), content_text(b)),
        ("Model", a.model.model_id, b.model.model_id),
        ("Params", pretty(a.params), pretty(b.params)),
        ("Tools", pretty(a.tools), pretty(b.tools)),
    ):
        sections.append(
            {"title": title, "rows": _side_by_side(left, right), "changed": left != right}
        )
    return {"sections": sections}


def _side_by_side(left: str, right: str) -> list[dict]:
    a, b = left.splitlines(), right.splitlines()
    rows = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for k in range(i2 - i1):
                rows.append(
                    {
                        "kind": "same",
                        "left": a[i1 + k],
                        "right": b[j1 + k],
                        "ln": i1 + k + 1,
                        "rn": j1 + k + 1,
                    }
                )
            continue
        span = max(i2 - i1, j2 - j1)
        for k in range(span):
            li, rj = i1 + k, j1 + k
            rows.append(
                {
                    "kind": tag,
                    "left": a[li] if li < i2 else None,
                    "right": b[rj] if rj < j2 else None,
                    "ln": li + 1 if li < i2 else None,
                    "rn": rj + 1 if rj < j2 else None,
                }
            )
    return rows


# -- resolve ----------------------------------------------------------------------------------


def resolve_body(version: PromptVersion, *, label: str | None) -> dict:
    body = {"name": version.prompt.name, "version": version.number, "label": label}
    if version.messages is not None:
        body["messages"] = version.messages
    else:
        body["template"] = version.template
    body.update(
        {
            "model": version.model.model_id,
            "params": version.params,
            "tools": version.tools,
            "content_hash": version.content_hash,
        }
    )
    return body


def resolve_payload(
    *, org_id: int, name: str, label: str | None = None, number: int | None = None
) -> tuple[str, bytes] | None:
    """(etag, JSON bytes) for a label or a version number, from the cache when warm.
    A warm hit costs no database query."""
    selector = f"v:{number}" if number is not None else f"l:{label}"
    key, entry = resolve_cache.get(org_id, name, selector)
    if entry is not None:
        return entry
    qs = PromptVersion.objects.filter(organization_id=org_id, prompt__name=name).select_related(
        "prompt", "model"
    )
    if number is not None:
        version = qs.filter(number=number).first()
    else:
        version = qs.filter(labels__name=label).first()
    if version is None:
        return None
    body = json.dumps(
        resolve_body(version, label=label), separators=(",", ":"), ensure_ascii=False
    ).encode()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    entry = (etag, body)
    resolve_cache.put(key, entry)
    return entry


def known_prompt_versions(*, org, pairs: set[tuple[str, int]]) -> set[tuple[str, int]]:
    """For traces: which (prompt name, version number) pairs exist in the registry."""
    if not pairs:
        return set()
    names = {name for name, _ in pairs}
    rows = (
        PromptVersion.objects.for_org(org)
        .filter(prompt__name__in=names)
        .values_list("prompt__name", "number")
    )
    return {(n, v) for n, v in rows} & set(pairs)


def eval_runs_for_attach(*, org, version: PromptVersion, limit: int = 50):
    """Runs that may be attached to this version: recorded for exactly its content on its
    pinned model (the service checks the same facts), not linked to it yet."""
    from llmops.evals.models import EvalRun

    if not version.content_hash:
        return EvalRun.objects.none()
    return (
        EvalRun.objects.for_org(org)
        .filter(subject_content_hash=version.content_hash, model_id=version.model.model_id)
        .exclude(pk__in=version.eval_links.values("eval_run_id"))
        .order_by("-created_at", "-id")[:limit]
    )


def versions_pinning_model(*, org, model: ModelVersion, limit: int = 50) -> list[dict]:
    """Prompt versions that pin this model, newest first, with the labels pointing at them
    (what a model suspension or retirement would touch)."""
    versions = (
        PromptVersion.objects.filter(organization=org, model=model)
        .select_related("prompt")
        .prefetch_related("labels")
        .order_by("-created_at")[:limit]
    )
    return [
        {"version": v, "labels": sorted(label.name for label in v.labels.all())} for v in versions
    ]


def deployed_labels(*, org, limit: int = 200) -> QuerySet[Label]:
    """Labels that point at a version (what an incident can roll back), by prompt and name."""
    return (
        Label.objects.for_org(org)
        .filter(version__isnull=False)
        .select_related("prompt", "version")
        .order_by("prompt__name", "name")[:limit]
    )


def label_get(*, org, label_id) -> Label | None:
    try:
        label_id = int(label_id)
    except (TypeError, ValueError):
        return None
    return Label.objects.for_org(org).select_related("prompt").filter(pk=label_id).first()


def version_by_ref(*, org, name: str, number: int | None) -> PromptVersion | None:
    """`name` version `number` in this organization, or None."""
    if not name or not number:
        return None
    return (
        PromptVersion.objects.for_org(org)
        .select_related("prompt", "model")
        .filter(prompt__name=name, number=number)
        .first()
    )
