"""`manage.py api_limits SLUG [--set BUCKET.LEVEL=RATE ...] [--unset BUCKET.LEVEL ...] [--reset]`

Shows, or changes, an organization's API rate limits (README "Limits"): each bucket
(ingest, alerts, webhook_test, writes) has a limit per key and per organization."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from llmops.audit.services import audit_record
from llmops.tenancy.actor import Actor
from llmops.tenancy.models import Organization
from llmops.tenancy.selectors import organization_cache_clear
from llmops.tenancy.throttling import LEVELS, limit_for


class Command(BaseCommand):
    help = "Show or change an organization's API rate limits (per key and per organization)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="BUCKET.LEVEL=RATE",
            help="e.g. ingest.org=5000/min (level: key or org; rate: N/s, N/min, N/hour, N/day)",
        )
        parser.add_argument(
            "--unset", action="append", default=[], metavar="BUCKET.LEVEL", help="back to default"
        )
        parser.add_argument("--reset", action="store_true", help="drop every override")

    def handle(self, *args, slug, set, unset, reset, **options):
        org = Organization.objects.filter(slug=slug).first()
        if org is None:
            raise CommandError(f"No organization '{slug}'.")
        current = org.api_limits if isinstance(org.api_limits, dict) else {}
        limits = {} if reset else {k: dict(v) for k, v in current.items() if isinstance(v, dict)}
        for item in set:
            name, sep, rate = item.partition("=")
            bucket, level = self._name(name)
            if not sep:
                raise CommandError(f"--set {item!r}: write BUCKET.LEVEL=RATE.")
            limits.setdefault(bucket, {})[level] = rate.strip()
        for name in unset:
            bucket, level = self._name(name)
            limits.get(bucket, {}).pop(level, None)
        limits = {bucket: levels for bucket, levels in limits.items() if levels}
        if set or unset or reset:
            org.api_limits = limits
            try:
                org.full_clean(validate_unique=False, validate_constraints=False)
            except ValidationError as exc:
                raise CommandError("; ".join(exc.message_dict.get("api_limits", exc.messages)))
            before = current
            with transaction.atomic():
                org.save(update_fields=["api_limits"])
                audit_record(
                    actor=Actor.system_for(org),
                    action="organization.api_limits_changed",
                    target=org,
                    details={"before": before, "after": limits},
                )
            organization_cache_clear(org.pk)
        for bucket in settings.API_LIMITS:
            shown = []
            for level in LEVELS:
                num, seconds = limit_for(org, bucket, level)
                own = " (own)" if level in limits.get(bucket, {}) else ""
                shown.append(f"{level} {num}/{seconds}s{own}")
            self.stdout.write(f"{bucket}: " + ", ".join(shown))

    def _name(self, name: str) -> tuple[str, str]:
        bucket, _, level = name.strip().partition(".")
        if bucket not in settings.API_LIMITS or level not in LEVELS:
            known = ", ".join(settings.API_LIMITS)
            raise CommandError(
                f"{name!r}: write BUCKET.LEVEL with a bucket of {known}, a level of key or org."
            )
        return bucket, level
