"""Writes for the model catalog, one module per use case:

- `proposals`: proposing a model version and correcting its details (`fields` cleans them);
- `lifecycle`: decisions (four eyes, eval gate, floating ids), lifecycle transitions and
  floating-flag corrections, with break-glass;
- `evidence`: eval runs linked as evidence, and recording a run about a model;
- `deprecation`: deprecation and retirement warnings to admins.

Every write checks permission, validates, records a ModelDecision row where the lifecycle
moves, and audits last, in one transaction. Import from this package
(`from llmops.catalog import services`); the modules are its layout."""

from ._common import LIFECYCLE_RULE, TRANSITION_VERBS, TRANSITIONS, model_link
from .deprecation import WARN_DAYS, deprecation_warnings_send
from .evidence import model_attach_evidence, model_ref_resolve, model_run_record
from .fields import PROPOSE_FIELD_ORDER, PROPOSE_FIELDS, UPDATE_FIELDS
from .lifecycle import DECISIONS, model_decide, model_set_floating, model_transition
from .proposals import model_propose, model_update

__all__ = [
    "DECISIONS",
    "LIFECYCLE_RULE",
    "PROPOSE_FIELD_ORDER",
    "PROPOSE_FIELDS",
    "TRANSITIONS",
    "TRANSITION_VERBS",
    "UPDATE_FIELDS",
    "WARN_DAYS",
    "deprecation_warnings_send",
    "model_attach_evidence",
    "model_decide",
    "model_link",
    "model_propose",
    "model_ref_resolve",
    "model_run_record",
    "model_set_floating",
    "model_transition",
    "model_update",
]
