"""Datasets and their cases: creating a dataset, adding one case (reviews and incidents
send theirs here) or up to 5,000 at once."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import IntegrityError, transaction

from llmops.audit.services import audit_record
from llmops.common.errors import InvalidInput, NotFound, NotPermitted, TooLarge
from llmops.tenancy.actor import Actor
from llmops.tenancy.policy import can, require

from ..models import EvalCase, EvalDataset
from ._common import _human, _tags

MAX_BULK_CASES = 5000
CASE_FIELDS = frozenset(
    {"input", "expected", "criteria", "tags", "source_kind", "source_label", "source_link"}
)


@transaction.atomic
def dataset_create(*, actor: Actor, name: str, description: str = "", tags=()) -> EvalDataset:
    require(actor, "eval.write")
    name = (name or "").strip()
    if not name:
        raise InvalidInput("A dataset needs a name.", field="name")
    if len(name) > 200:
        raise InvalidInput("Names are at most 200 characters.", field="name")
    if EvalDataset.objects.for_org(actor.org).filter(name=name).exists():
        raise InvalidInput(f"A dataset named '{name}' already exists.", field="name")
    try:
        with transaction.atomic():  # a concurrent create of the same name loses cleanly
            dataset = EvalDataset.objects.create(
                organization=actor.org,
                name=name,
                description=description or "",
                tags=_tags(list(tags) if isinstance(tags, tuple) else tags, "tags"),
            )
    except IntegrityError:
        raise InvalidInput(f"A dataset named '{name}' already exists.", field="name")
    audit_record(actor=actor, action="eval.dataset_created", target=dataset, details={"name": name})
    return dataset


def _case_fields(item: Any, prefix: str) -> dict:
    if not isinstance(item, dict):
        raise InvalidInput("Each case must be a JSON object.", field=prefix.rstrip("."))
    unknown = set(item) - CASE_FIELDS
    if unknown:
        name = sorted(unknown)[0]
        raise InvalidInput(f"Unknown case field '{name}'.", field=f"{prefix}{name}")
    if item.get("input") is None:
        raise InvalidInput("A case needs an input.", field=f"{prefix}input")
    criteria = item.get("criteria") or ""
    if not isinstance(criteria, str):
        raise InvalidInput("Criteria must be text.", field=f"{prefix}criteria")
    source_kind = item.get("source_kind") or EvalCase.SourceKind.MANUAL
    if source_kind not in EvalCase.SourceKind.values:
        raise InvalidInput(
            f"Unknown source kind '{source_kind}'; use one of "
            f"{', '.join(EvalCase.SourceKind.values)}.",
            field=f"{prefix}source_kind",
        )
    for key, limit in (("source_label", 200), ("source_link", 500)):
        value = item.get(key) or ""
        if not isinstance(value, str) or len(value) > limit:
            raise InvalidInput(
                f"{key} must be text of at most {limit} characters.", field=prefix + key
            )
    return {
        "input": item["input"],
        "expected": item.get("expected"),
        "criteria": criteria,
        "tags": _tags(item.get("tags"), f"{prefix}tags"),
        "source_kind": source_kind,
        "source_label": item.get("source_label") or "",
        "source_link": item.get("source_link") or "",
    }


def _require_case_write(actor: Actor, source_kinds: Iterable[str]) -> None:
    # Reviews and incidents add their failure cases through their own services, which have
    # already checked the actor's right to work that review or incident; a reviewer who may
    # not edit datasets by hand may still send a reviewed output to one.
    if can(actor, "eval.write"):
        return
    kinds = set(source_kinds)
    if kinds and kinds <= {"review", "incident"} and can(actor, "eval.view"):
        return
    raise NotPermitted("You may not do 'eval.write' here.")


def _check_dataset(actor: Actor, dataset: EvalDataset) -> EvalDataset:
    if dataset is None or dataset.organization_id != actor.org.pk:
        raise NotFound("No such dataset.")
    return dataset


@transaction.atomic
def case_create(
    *,
    actor: Actor,
    dataset: EvalDataset,
    input: Any,
    expected: Any = None,
    criteria: str = "",
    tags=(),
    source_kind: str = "manual",
    source_label: str = "",
    source_link: str = "",
) -> EvalCase:
    """Add one case; reviews and incidents call this with their source label and link."""
    _check_dataset(actor, dataset)
    fields = _case_fields(
        {
            "input": input,
            "expected": expected,
            "criteria": criteria,
            "tags": list(tags) if isinstance(tags, tuple) else tags,
            "source_kind": source_kind,
            "source_label": source_label,
            "source_link": source_link,
        },
        "",
    )
    _require_case_write(actor, [fields["source_kind"]])
    case = EvalCase.objects.create(
        organization=actor.org, dataset=dataset, created_by=_human(actor), **fields
    )
    audit_record(
        actor=actor,
        action="eval.case_added",
        target=dataset,
        details={"case": case.pk, "source_kind": case.source_kind, "source": source_label},
    )
    return case


@transaction.atomic
def cases_bulk_create(
    *, actor: Actor, dataset: EvalDataset, cases: list, source_kind: str = "import"
) -> list[EvalCase]:
    """Add up to 5,000 cases at once; any invalid case stores none (its index is named)."""
    _check_dataset(actor, dataset)
    if not isinstance(cases, list):
        raise InvalidInput("Send a list of cases.", field="cases")
    if not cases:
        raise InvalidInput("Send at least one case.", field="cases")
    if len(cases) > MAX_BULK_CASES:
        raise TooLarge(
            f"At most {MAX_BULK_CASES} cases per request; split the upload.",
            details={"limit": MAX_BULK_CASES, "received": len(cases)},
        )
    rows = []
    for i, item in enumerate(cases):
        if isinstance(item, dict) and "source_kind" not in item:
            item = {**item, "source_kind": source_kind}
        rows.append(_case_fields(item, f"cases[{i}]."))
    _require_case_write(actor, {row["source_kind"] for row in rows})
    user = _human(actor)
    created = EvalCase.objects.bulk_create(
        [EvalCase(organization=actor.org, dataset=dataset, created_by=user, **row) for row in rows],
        batch_size=1000,
    )
    audit_record(
        actor=actor,
        action="eval.cases_imported",
        target=dataset,
        details={"count": len(created)},
    )
    return created
