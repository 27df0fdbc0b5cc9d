"""Every write of the prompt registry, one module per use case:

- `prompts`: prompts and their owners;
- `versions`: proposing, submitting and withdrawing versions, and what may be done with a
  version now (`version_allowed_actions`, which the pages render);
- `reviews`: review decisions (through the gates in gates.py) and retracting them;
- `evidence`: eval runs of a version, judged under the prompt's policy;
- `deploys`: label moves, label protection, model-risk warnings behind labels;
- `sync`: prompt files from git.

One transaction per use case: permission via `can`, rules, rows, notifications, audit last.
Import from this package (`from prompts import services`); the modules are its layout."""

from ._common import may_break_glass
from .deploys import (
    LABEL_NAME_MAX,
    NEVER_DEPLOYED,
    label_deploy,
    label_set_protected,
    labels_warn_model_risks,
)
from .evidence import run_judged_version, version_attach_eval_run, version_record_eval_run
from .prompts import (
    OWNER_PERMS,
    prompt_create,
    prompt_owner_grant,
    prompt_owner_revoke,
    prompt_update,
)
from .reviews import approval_retract, retract_blocker, version_review
from .sync import MAX_SYNC_FILES, prompts_sync
from .versions import (
    VERSION_OPS,
    identical_note,
    latest_number,
    version_allowed_actions,
    version_blocker,
    version_create,
    version_submit,
    version_withdraw,
)

__all__ = [
    "LABEL_NAME_MAX",
    "MAX_SYNC_FILES",
    "NEVER_DEPLOYED",
    "OWNER_PERMS",
    "VERSION_OPS",
    "approval_retract",
    "identical_note",
    "label_deploy",
    "label_set_protected",
    "labels_warn_model_risks",
    "latest_number",
    "may_break_glass",
    "prompt_create",
    "prompt_owner_grant",
    "prompt_owner_revoke",
    "prompt_update",
    "prompts_sync",
    "retract_blocker",
    "run_judged_version",
    "version_allowed_actions",
    "version_attach_eval_run",
    "version_blocker",
    "version_create",
    "version_record_eval_run",
    "version_review",
    "version_submit",
    "version_withdraw",
]
