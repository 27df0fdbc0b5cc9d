"""`manage.py audit_verify [--org SLUG] [--heads]`: exit 0 when every chain is intact."""

import sys

from django.core.management.base import BaseCommand, CommandError

from llmops.audit.verify import verify_org
from llmops.tenancy.models import Organization


class Command(BaseCommand):
    help = "Prove each organization's audit hash chain; name the first broken event."

    def add_arguments(self, parser):
        parser.add_argument("--org", help="only this organization (slug)")
        parser.add_argument(
            "--heads", action="store_true", help="print each chain's latest sequence and hash"
        )

    def handle(self, *args, org=None, heads=False, **options):
        orgs = Organization.objects.order_by("slug")
        if org:
            orgs = orgs.filter(slug=org)
            if not orgs.exists():
                raise CommandError(f"No organization '{org}'.")
        broken = False
        for organization in orgs:
            report = verify_org(organization.pk)
            if report.ok:
                self.stdout.write(f"{organization.slug}: ok, {report.events} events")
            else:
                broken = True
                self.stdout.write(
                    f"{organization.slug}: BROKEN at event #{report.broken_seq}: {report.problem}"
                )
            if heads:
                self.stdout.write(
                    f"head {organization.slug} seq={report.head_seq} hash={report.head_hash or '-'}"
                )
        if broken:
            sys.exit(1)
