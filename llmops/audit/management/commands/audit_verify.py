"""`manage.py audit_verify [--org SLUG] [--heads] [--heads-out FILE] [--against FILE]`:
exit 0 when every chain is intact (and, with --against, still holds the heads recorded
earlier)."""

import json
import sys

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from llmops.audit.verify import check_against, heads_document, parse_heads, verify_org
from llmops.tenancy.models import Organization


class Command(BaseCommand):
    help = "Prove each organization's audit hash chain; name the first broken event."

    def add_arguments(self, parser):
        parser.add_argument("--org", help="only this organization (slug)")
        parser.add_argument(
            "--heads", action="store_true", help="print each chain's latest sequence and hash"
        )
        parser.add_argument(
            "--heads-out",
            metavar="FILE",
            help="write each chain's head as JSON to FILE (keep it outside the database)",
        )
        parser.add_argument(
            "--against",
            metavar="FILE",
            help="a file from an earlier --heads-out: fail when a chain no longer holds it "
            "(events deleted and the head rewound, or the chain rewritten)",
        )

    def handle(self, *args, org=None, heads=False, heads_out=None, against=None, **options):
        recorded = self._read(against) if against else {}
        orgs = Organization.objects.order_by("slug")
        if org:
            orgs = orgs.filter(slug=org)
            if not orgs.exists():
                raise CommandError(f"No organization '{org}'.")
        broken = False
        reports = {}
        for organization in orgs:
            report = verify_org(organization.pk)
            reports[organization.slug] = report
            if report.ok:
                self.stdout.write(f"{organization.slug}: ok, {report.events} events")
            else:
                broken = True
                self.stdout.write(
                    f"{organization.slug}: BROKEN at event #{report.broken_seq}: {report.problem}"
                )
            if organization.slug in recorded:
                problem = check_against(organization.pk, report, recorded[organization.slug])
                if problem:
                    broken = True
                    self.stdout.write(f"{organization.slug}: DOES NOT MATCH {against}: {problem}")
            if heads:
                self.stdout.write(
                    f"head {organization.slug} seq={report.head_seq} hash={report.head_hash or '-'}"
                )
        for slug in sorted(set(recorded) - set(reports)):
            if org is None or slug == org:
                broken = True
                self.stdout.write(f"{slug}: DOES NOT MATCH {against}: the organization is gone")
        if heads_out:
            document = heads_document(reports, timezone.now().isoformat())
            try:
                with open(heads_out, "w", encoding="utf-8") as out:
                    json.dump(document, out, indent=2)
                    out.write("\n")
            except OSError as exc:
                raise CommandError(f"Cannot write {heads_out}: {exc.strerror}.") from exc
        if broken:
            sys.exit(1)

    def _read(self, path: str) -> dict:
        try:
            with open(path, encoding="utf-8") as fh:
                return parse_heads(json.load(fh))
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}.") from exc
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            raise CommandError(f"{path}: {exc}.") from exc
