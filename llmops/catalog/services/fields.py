"""The fields of a model version a proposal or a correction may set, cleaned with
`llmops.common.clean` (each error names its field)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from llmops.common import clean
from llmops.common.errors import InvalidInput
from llmops.tenancy.actor import Actor

from ..models import DataClass, ModelVersion, Provider

# The fields a proposal may carry, in the order the API shows them.
PROPOSE_FIELD_ORDER = (
    "provider",
    "model_id",
    "display_name",
    "platform_id",
    "context_window",
    "input_price_per_mtok",
    "output_price_per_mtok",
    "use_cases",
    "data_classes",
    "notes",
    "deprecation_date",
    "retirement_date",
    "lifecycle_source_url",
    "replacement",
)
PROPOSE_FIELDS = frozenset(PROPOSE_FIELD_ORDER)
UPDATE_FIELDS = PROPOSE_FIELDS - {"model_id", "provider"}
TEXT_LIMITS = (("display_name", 200), ("platform_id", 300), ("notes", 20000))
MAX_CONTEXT_WINDOW = 100_000_000
PRICE_BELOW = Decimal("100000000")


def _provider(value: Any) -> str:
    if value not in Provider.values:
        raise InvalidInput(
            f"Unknown provider '{value}'; use one of {', '.join(Provider.values)}.",
            field="provider",
        )
    return value


def _replacement(actor: Actor, value: Any, model: ModelVersion | None) -> ModelVersion | None:
    if value in (None, ""):
        return None
    pk = value.pk if isinstance(value, ModelVersion) else value
    try:
        replacement = ModelVersion.objects.for_org(actor.org).get(pk=int(pk))
    except (ModelVersion.DoesNotExist, TypeError, ValueError):
        raise InvalidInput("Unknown replacement model.", field="replacement")
    if model is not None and replacement.pk == model.pk:
        raise InvalidInput("A model cannot replace itself.", field="replacement")
    return replacement


def _check_dates(out: dict, model: ModelVersion | None) -> None:
    dep = out.get("deprecation_date", getattr(model, "deprecation_date", None))
    ret = out.get("retirement_date", getattr(model, "retirement_date", None))
    if dep and ret and ret < dep:
        raise InvalidInput(
            "The retirement date cannot be before the deprecation date.", field="retirement_date"
        )


def clean_fields(actor: Actor, fields: dict, *, allowed: frozenset[str], model=None) -> dict:
    """The given `fields` cleaned (an unknown one is refused), checked against `model`'s
    current dates when it is a correction."""
    unknown = set(fields) - allowed
    if unknown:
        name = sorted(unknown)[0]
        raise InvalidInput(f"Unknown field '{name}'.", field=name)
    cleaners = {
        "provider": _provider,
        "model_id": lambda v: clean.text(
            v, field="model_id", max_length=200, required=True, one_word=True
        ),
        "lifecycle_source_url": lambda v: clean.url(v, field="lifecycle_source_url"),
        "context_window": lambda v: clean.count(
            v, field="context_window", min_value=1, max_value=MAX_CONTEXT_WINDOW, unit="tokens"
        ),
        "input_price_per_mtok": lambda v: _price(v, "input_price_per_mtok"),
        "output_price_per_mtok": lambda v: _price(v, "output_price_per_mtok"),
        "deprecation_date": lambda v: clean.day(v, field="deprecation_date"),
        "retirement_date": lambda v: clean.day(v, field="retirement_date"),
        "use_cases": lambda v: clean.words(v, field="use_cases"),
        "data_classes": lambda v: clean.words(v, field="data_classes", choices=DataClass.values),
        "replacement": lambda v: _replacement(actor, v, model),
    }
    for name, limit in TEXT_LIMITS:
        cleaners[name] = lambda v, name=name, limit=limit: clean.text(
            v, field=name, max_length=limit
        )
    out = {name: cleaners[name](fields[name]) for name in cleaners if name in fields}
    _check_dates(out, model)
    return out


def _price(value: Any, name: str) -> Decimal | None:
    return clean.money(
        value, field=name, below=PRICE_BELOW, places=4, unit="USD per million tokens"
    )
