"""`manage.py demo [--reset]`: two organizations (acme, globex) with users and realistic
data for every app. Idempotent: does nothing when the demo organizations exist."""

from importlib import import_module

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from llmops.tenancy.actor import Actor
from llmops.tenancy.models import Membership, Organization, Role
from llmops.tenancy.services import org_create, team_add_member, team_create

DEMO_ORGS = [("acme", "Acme Corp"), ("globex", "Globex")]
PEOPLE = [
    ("admin", Role.ADMIN),
    ("maint1", Role.MAINTAINER),
    ("maint2", Role.MAINTAINER),
    ("reviewer1", Role.REVIEWER),
    ("reviewer2", Role.REVIEWER),
    ("viewer", Role.VIEWER),
]
PASSWORD = "demo"


class Command(BaseCommand):
    help = "Seed two demo organizations with users (password 'demo') and data for every app."

    def add_arguments(self, parser):
        parser.add_argument("--reset", action="store_true", help="wipe the database first")
        parser.add_argument("--force", action="store_true", help="run even with DEBUG off")

    def handle(self, *args, reset=False, force=False, **options):
        if not settings.DEBUG and not force:
            raise CommandError(
                "Refusing to seed demo users with DEBUG off; pass --force if you mean it."
            )
        if reset:
            self._reset()
        elif Organization.objects.filter(slug="acme").exists():
            self.stdout.write("Demo data already present (use --reset to start over).")
            return
        with transaction.atomic():
            for slug, name in DEMO_ORGS:
                users = self._seed_org(slug, name)
                self.stdout.write(f"{slug}: users {', '.join(sorted(users))}")
        # Each app seeds its own data, in the import order, through its own services.
        for config in apps.get_app_configs():
            if not config.name.startswith(("llmops.", "prompts", "reviews", "incidents")):
                continue
            try:
                module = import_module(f"{config.name}.demo")
            except ModuleNotFoundError as exc:
                if exc.name != f"{config.name}.demo":
                    raise
                continue
            for slug, _ in DEMO_ORGS:
                org = Organization.objects.get(slug=slug)
                users = {
                    m.user.username.split("-", 1)[1]: m.user
                    for m in Membership.objects.filter(organization=org).select_related("user")
                }
                with transaction.atomic():
                    module.seed(org=org, users=users, stdout=self.stdout)
        self.stdout.write(self.style.SUCCESS("Demo ready: log in as acme-admin / demo."))

    def _seed_org(self, slug: str, name: str) -> dict:
        User = get_user_model()
        users = {}
        for short, _role in PEOPLE:
            username = f"{slug}-{short}"
            user, created = User.objects.get_or_create(
                username=username, defaults={"email": f"{username}@example.com"}
            )
            if created:
                user.set_password(PASSWORD)
                user.save()
            users[short] = user
        org = org_create(slug=slug, name=name, admin=users["admin"])
        for short, role in PEOPLE[1:]:
            Membership.objects.create(user=users[short], organization=org, role=role)
        admin_actor = Actor(org=org, user=users["admin"], role=Role.ADMIN)
        team = team_create(actor=admin_actor, name="Prompt owners")
        for short in ("maint1", "maint2"):
            team_add_member(actor=admin_actor, team=team, username=users[short].username)
        reviewers = team_create(actor=admin_actor, name="Reviewers")
        for short in ("reviewer1", "reviewer2"):
            team_add_member(actor=admin_actor, team=reviewers, username=users[short].username)
        return users

    def _reset(self) -> None:
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
            try:
                call_command("flush", interactive=False, verbosity=0)
            finally:
                with connection.cursor() as cursor:
                    cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER USER")
        else:
            from llmops.audit.appendonly import triggers_off

            with triggers_off(connection):
                call_command("flush", interactive=False, verbosity=0)
        self.stdout.write("Database wiped.")
