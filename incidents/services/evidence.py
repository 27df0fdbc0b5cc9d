"""Evidence: cited generations, prompt and model versions and reviews, snapshotted with a
sha256 so the record holds when the source changes or expires."""

from __future__ import annotations

import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

from llmops.audit.services import audit_record
from llmops.common.errors import (
    InvalidInput,
    NotFound,
)
from llmops.tenancy.actor import Actor

from ..models import (
    Evidence,
    Incident,
    TimelineEntry,
)
from ._common import (
    _open_incident,
    _still_open,
    _timeline,
    snapshot_hash,
    snapshot_of,
)
from .checklists import _sync_checklists


def _url(url_name: str, /, **kwargs) -> str:
    from django.urls import NoReverseMatch, reverse

    try:
        return reverse(url_name, kwargs=kwargs)
    except NoReverseMatch:
        return ""


def _evidence_fields(kind: str, obj: Any) -> dict:
    """What to keep of a cited object: label, link, the keys conditions match on."""
    slug = obj.organization.slug
    if kind == Evidence.Kind.GENERATION:
        return {
            "ref": str(obj.external_id),
            "label": f"Generation {obj.external_id}",
            "url": _url("traces:generation", org_slug=slug, pk=obj.pk),
            "model_id": (obj.model_id or "")[:200],
            "prompt_name": (obj.prompt_name or "")[:200],
        }
    if kind == Evidence.Kind.MODEL_VERSION:
        return {
            "ref": str(obj.pk),
            "label": f"Model {obj.model_id}",
            "url": _url("catalog:detail", org_slug=slug, pk=obj.pk),
            "model_id": obj.model_id,
            "prompt_name": "",
        }
    if kind == Evidence.Kind.PROMPT_VERSION:
        prompt = obj.prompt
        return {
            "ref": str(obj.pk),
            "label": f"Prompt {prompt.name} v{obj.number}",
            "url": _url("prompts:version", org_slug=slug, name=prompt.name, number=obj.number),
            "model_id": getattr(obj.model, "model_id", "")[:200],
            "prompt_name": prompt.name,
        }
    if kind == Evidence.Kind.REVIEW:
        reviewer = getattr(obj, "reviewer", None)
        return {
            "ref": str(obj.pk),
            "label": f"Review {obj.pk}" + (f" by {reviewer.get_username()}" if reviewer else ""),
            "url": _url("reviews:item", org_slug=slug, queue_id=obj.queue_id, item_id=obj.item_id),
            "model_id": "",
            "prompt_name": "",
        }
    raise InvalidInput(f"Unknown evidence kind {kind!r}.", field="kind")


def _link_evidence(actor: Actor, incident: Incident, kind: str, obj: Any, extra=None) -> Evidence:
    if getattr(obj, "organization_id", None) != incident.organization_id:
        raise NotFound("No such object to link.")
    fields = _evidence_fields(kind, obj)
    existing = Evidence.objects.filter(incident=incident, kind=kind, ref=fields["ref"]).first()
    if existing is not None:
        return existing
    snapshot = snapshot_of(obj)
    if extra:
        snapshot["_extra"] = json.loads(json.dumps(extra, cls=DjangoJSONEncoder, default=str))
    evidence = Evidence.objects.create(
        organization_id=incident.organization_id,
        incident=incident,
        kind=kind,
        snapshot=snapshot,
        snapshot_hash=snapshot_hash(snapshot),
        added_by_label=actor.label[:200],
        **fields,
    )
    _timeline(
        actor,
        incident,
        TimelineEntry.Kind.LINK,
        f"Evidence linked: {evidence.label} (snapshot sha256 {evidence.snapshot_hash[:12]}…).",
        {"evidence": evidence.pk, "kind": kind, "ref": evidence.ref},
    )
    if kind == Evidence.Kind.GENERATION:
        _pin_generation(actor, obj, incident)
    return evidence


def _pin_generation(actor: Actor, generation: Any, incident: Incident) -> None:
    """Ask traces to keep the generation past retention (the snapshot keeps it regardless)."""
    from llmops.traces.services import generation_pin

    generation_pin(
        org=incident.organization,
        generation_ids=[generation.pk],
        reason=f"Evidence in {incident.ref}",
    )


@transaction.atomic
def evidence_link(*, actor: Actor, incident: Incident, kind: str, obj: Any) -> Evidence:
    """Cite a generation, prompt version, model version or review; snapshotted with a hash."""
    incident = _open_incident(actor, incident, action="incident.open", check=_still_open)
    evidence = _link_evidence(actor, incident, kind, obj)
    _sync_checklists(actor, incident)
    audit_record(
        actor=actor,
        action="incident.evidence",
        target=incident,
        details={"kind": kind, "ref": evidence.ref, "sha256": evidence.snapshot_hash},
    )
    return evidence
