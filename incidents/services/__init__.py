"""Every write of the incidents app, one module per use case:

- `runbooks`: versioned runbooks (create, new version, reviewed, archived);
- `intake`: opening incidents by hand, from a review, and from alerts (deduplicated);
- `lifecycle`: the guarded status moves (`transition_blockers` says what blocks one now),
  severity, category, commander, notes, the serious-incident clock;
- `checklists`: matching runbooks attached to an incident, ticking their steps;
- `evidence`: cited objects, snapshotted with a hash;
- `postmortems`: postmortems and action items;
- `quick_actions`: eval cases from the failure, suspending a model, rolling a prompt back.

Each service is one transaction: `_open_incident` (organization, lock, permission via
`policy.require`, state check), validation, rows, then `_record` (timeline, notices, the
audit event last). Import from this package (`from incidents import services`); the modules
are its layout."""

from ._common import (
    DEDUPE_WINDOW,
    EVAL_CASE_CATEGORIES,
    MAX_ALERT_DETAILS_BYTES,
    MAX_DEDUPE_KEY,
    MAX_NOTE,
    MAX_POSTMORTEM,
    MAX_REASON,
    MAX_STEP_TEXT,
    MAX_STEPS,
    MAX_SUMMARY,
    MAX_TITLE,
    MILESTONES,
    POSTMORTEM_SEVERITIES,
    STATUS_TIMESTAMP,
    clean_category,
    clean_severity,
    incident_link,
    snapshot_hash,
    snapshot_of,
)
from .checklists import checklist_step_set, version_matches
from .evidence import evidence_link
from .intake import alert_receive, incident_open, incident_open_from_review
from .lifecycle import (
    AFTER_MITIGATION,
    eval_case_count,
    incident_mark_serious,
    incident_note,
    incident_set_commander,
    incident_transition,
    incident_update,
    transition_blockers,
)
from .postmortems import (
    action_item_create,
    action_item_update,
    action_items_notify_overdue,
    postmortem_save,
    postmortem_template,
)
from .quick_actions import (
    incident_add_eval_case,
    incident_link_eval_case,
    incident_rollback_prompt,
    incident_suspend_model,
    rollback_target,
)
from .runbooks import (
    runbook_create,
    runbook_mark_reviewed,
    runbook_set_archived,
    runbook_version_create,
)

__all__ = [
    "AFTER_MITIGATION",
    "DEDUPE_WINDOW",
    "EVAL_CASE_CATEGORIES",
    "MAX_ALERT_DETAILS_BYTES",
    "MAX_DEDUPE_KEY",
    "MAX_NOTE",
    "MAX_POSTMORTEM",
    "MAX_REASON",
    "MAX_STEP_TEXT",
    "MAX_STEPS",
    "MAX_SUMMARY",
    "MAX_TITLE",
    "MILESTONES",
    "POSTMORTEM_SEVERITIES",
    "STATUS_TIMESTAMP",
    "action_item_create",
    "action_item_update",
    "action_items_notify_overdue",
    "alert_receive",
    "checklist_step_set",
    "clean_category",
    "clean_severity",
    "eval_case_count",
    "evidence_link",
    "incident_add_eval_case",
    "incident_link",
    "incident_link_eval_case",
    "incident_mark_serious",
    "incident_note",
    "incident_open",
    "incident_open_from_review",
    "incident_rollback_prompt",
    "incident_set_commander",
    "incident_suspend_model",
    "incident_transition",
    "incident_update",
    "postmortem_save",
    "postmortem_template",
    "rollback_target",
    "runbook_create",
    "runbook_mark_reviewed",
    "runbook_set_archived",
    "runbook_version_create",
    "snapshot_hash",
    "snapshot_of",
    "transition_blockers",
    "version_matches",
]
