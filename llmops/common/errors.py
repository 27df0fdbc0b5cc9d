"""The one error hierarchy services raise; HTML and API translate it once."""

from __future__ import annotations


class GovernanceError(Exception):
    """Base class. `code` is machine-readable; the message is for a person."""

    status = 409
    code = "governance_error"

    def __init__(self, message: str, *, code: str | None = None, details: dict | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details or {}


class InvalidInput(GovernanceError):
    """Bad input; `field` names what to fix."""

    status = 400
    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None, errors: dict | None = None, **kw):
        details = kw.pop("details", None) or {}
        if errors:
            details.setdefault("fields", errors)
        elif field:
            details.setdefault("fields", {field: [message]})
        super().__init__(message, details=details, **kw)
        self.field = field


class NotFound(GovernanceError):
    """Absent, another organization's, or invisible to this actor."""

    status = 404
    code = "not_found"


class NotPermitted(GovernanceError):
    """The actor may see the object but may not do this."""

    status = 403
    code = "not_permitted"


class InvalidTransition(GovernanceError):
    status = 409
    code = "invalid_transition"


class PolicyViolation(GovernanceError):
    """A governance rule forbids it; the message names the rule."""

    status = 409
    code = "policy_violation"


class TooLarge(GovernanceError):
    status = 413
    code = "too_large"
