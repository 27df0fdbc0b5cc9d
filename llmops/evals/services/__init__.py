"""Writes for evals, one module per use case:

- `datasets`: datasets and their cases;
- `runs`: eval runs (metrics, per-case results, the dataset's fingerprint);
- `promptfoo`: promptfoo's results file as run arguments;
- `policies`: policies, the default policy, and the verdict of a run under a policy.

Each write checks permission, validates everything before storing anything, and audits, in
one transaction (which nests inside a caller's). Import from this package
(`from llmops.evals import services`); the modules are its layout."""

from .datasets import MAX_BULK_CASES, case_create, cases_bulk_create, dataset_create
from .policies import (
    DEFAULT_POLICY_NAME,
    DEFAULT_THRESHOLDS,
    OPS,
    Verdict,
    policy_as_dict,
    policy_default,
    policy_evaluate,
    policy_save,
    run_case_count,
    thresholds_clean,
)
from .promptfoo import promptfoo_parse
from .runs import COMPUTED_METRICS, MAX_RESULTS, TOOLS, dataset_fingerprint, run_create

__all__ = [
    "COMPUTED_METRICS",
    "DEFAULT_POLICY_NAME",
    "DEFAULT_THRESHOLDS",
    "MAX_BULK_CASES",
    "MAX_RESULTS",
    "OPS",
    "TOOLS",
    "Verdict",
    "case_create",
    "cases_bulk_create",
    "dataset_create",
    "dataset_fingerprint",
    "policy_as_dict",
    "policy_default",
    "policy_evaluate",
    "policy_save",
    "promptfoo_parse",
    "run_case_count",
    "run_create",
    "thresholds_clean",
]
