"""`manage.py create_api_key --org SLUG --name NAME --scopes a,b [--user USERNAME]`"""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from llmops.common.errors import GovernanceError
from llmops.tenancy.actor import Actor
from llmops.tenancy.models import Organization
from llmops.tenancy.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key and print it once. With --user, a personal key acting as that user."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True)
        parser.add_argument("--name", required=True)
        parser.add_argument(
            "--scopes", required=True, help="comma-separated, e.g. ingest,prompts:read"
        )
        parser.add_argument(
            "--user", help="username: a personal key (never beyond the user's permissions)"
        )

    def handle(self, *args, org, name, scopes, user=None, **options):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"No organization '{org}'.")
        owner = None
        if user:
            owner = get_user_model().objects.filter(username=user).first()
            if owner is None:
                raise CommandError(f"No user '{user}'.")
        actor = Actor.system_for(organization)
        try:
            key, raw = api_key_create(actor=actor, name=name, scopes=scopes.split(","), user=owner)
        except GovernanceError as exc:
            raise CommandError(exc.message)
        self.stderr.write(
            f"Created {'personal' if owner else 'machine'} key {key.prefix} ({', '.join(key.scopes)}). Shown once:"
        )
        self.stdout.write(raw)
