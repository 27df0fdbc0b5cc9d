"""`manage.py create_org SLUG --name NAME --admin USERNAME [--password P]`"""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from llmops.common.errors import GovernanceError
from llmops.tenancy.services import org_create


class Command(BaseCommand):
    help = "Create an organization with a first admin (created if the user does not exist)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--admin", required=True, help="username of the first admin")
        parser.add_argument(
            "--password", help="password for a new admin user (else unusable until reset)"
        )
        parser.add_argument("--email", default="")

    def handle(self, *args, slug, name, admin, password=None, email="", **options):
        User = get_user_model()
        user = User.objects.filter(username=admin).first()
        if user is None:
            user = User.objects.create_user(username=admin, email=email, password=password)
            self.stdout.write(f"Created user {admin}.")
        elif password:
            raise CommandError(f"User {admin} exists; --password applies only to a new user.")
        try:
            org = org_create(slug=slug, name=name, admin=user)
        except GovernanceError as exc:
            raise CommandError(exc.message)
        self.stdout.write(
            self.style.SUCCESS(f"Organization {org.slug} created; {admin} is its admin.")
        )
