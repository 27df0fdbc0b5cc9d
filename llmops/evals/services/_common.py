"""What the eval services share: number and tag checks, the dataset argument of runs and
policies, and the person behind an actor."""

from __future__ import annotations

import math
from typing import Any

from llmops.common.errors import InvalidInput
from llmops.tenancy.actor import Actor

from ..models import EvalDataset


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _tags(value: Any, field_name: str) -> list[str]:
    if value in (None, ""):
        return []
    if isinstance(value, str):
        value = [t.strip() for t in value.split(",")]
    if not isinstance(value, list | tuple) or not all(isinstance(t, str) for t in value):
        raise InvalidInput("Tags must be a list of strings.", field=field_name)
    tags = [t.strip()[:50] for t in value if t and t.strip()]
    return list(dict.fromkeys(tags))


def _human(actor: Actor):
    return actor.user if actor.is_human else None


def _dataset_arg(actor: Actor, dataset: Any) -> EvalDataset | None:
    if dataset in (None, ""):
        return None
    if isinstance(dataset, EvalDataset):
        if dataset.organization_id != actor.org.pk:
            raise InvalidInput("Unknown dataset.", field="dataset")
        return dataset
    try:
        pk = int(dataset)
    except (TypeError, ValueError):
        raise InvalidInput("The dataset must be a dataset id.", field="dataset")
    found = EvalDataset.objects.for_org(actor.org).filter(pk=pk).first()
    if found is None:
        raise InvalidInput(f"Unknown dataset {pk}.", field="dataset")
    return found
