"""Log-in lock-outs (django-axes): per user and address, and per address alone.

`AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address"]` makes axes count
both, but axes compares every count with one `AXES_FAILURE_LIMIT`. This handler gives the
per-address count its own, higher threshold (`AXES_IP_FAILURE_LIMIT`): one person
mistyping their password is locked out after a few tries, while password spraying (one
address trying many usernames) is stopped after `AXES_IP_FAILURE_LIMIT` failures in all.

It also keeps URL-borne secrets (invitation tokens in the `next` of a log-in, or the path
of an invitation signup that logs the new account in) out of axes' AccessAttempt and
AccessLog rows: the path is redacted, and `next` is one of AXES_SENSITIVE_PARAMETERS.
"""

from __future__ import annotations

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_lockout_parameters
from django.conf import settings
from django.db.models import Sum

from llmops.common.redact import redact


def _redact_request(request) -> None:
    if request is not None and getattr(request, "axes_path_info", None):
        request.axes_path_info = redact(request.axes_path_info)


class LockoutHandler(AxesDatabaseHandler):
    def get_failures(self, request, credentials=None) -> int:
        """The count axes compares with AXES_FAILURE_LIMIT: the per-user-and-address count,
        or the full limit once the address alone reached AXES_IP_FAILURE_LIMIT."""
        per_user = 0
        per_address = 0
        for params, attempts in zip(
            get_lockout_parameters(request, credentials),
            self.get_user_attempts(request, credentials),
            strict=True,
        ):
            failures = attempts.aggregate(n=Sum("failures_since_start"))["n"] or 0
            if params == "ip_address" or params == ["ip_address"]:
                per_address = max(per_address, failures)
            else:
                per_user = max(per_user, failures)
        if per_address >= settings.AXES_IP_FAILURE_LIMIT:
            return max(per_user, settings.AXES_FAILURE_LIMIT)
        return per_user

    def reset_user_attempts(self, request, credentials=None) -> int:
        """A successful log-in clears that user's failures from that address only: the
        address' own count stays, or a sprayer holding one valid account (their own) could
        reset it between rounds."""
        count = 0
        for params, attempts in zip(
            get_lockout_parameters(request, credentials),
            self.filter_user_attempts(request, credentials),
            strict=True,
        ):
            if "username" in ([params] if isinstance(params, str) else params):
                deleted, _ = attempts.delete()
                count += deleted
        return count

    def user_login_failed(self, sender, credentials, request=None, **kwargs):
        _redact_request(request)
        return super().user_login_failed(sender, credentials, request, **kwargs)

    def user_logged_in(self, sender, request, user, **kwargs):
        _redact_request(request)
        return super().user_logged_in(sender, request, user, **kwargs)

    def user_logged_out(self, sender, request, user, **kwargs):
        _redact_request(request)
        return super().user_logged_out(sender, request, user, **kwargs)
