"""`manage.py prompts_push DIR --org SLUG [--commit SHA] [--author EMAIL] [--user USERNAME]`

Reads every *.yaml / *.yml prompt file under DIR (format: README.md, "Prompt files") and
proposes a new version wherever the content differs from every version of the prompt — the
same service as `POST /api/v1/prompts/sync`. A file identical to an existing version (say,
pulled from `production` while a newer version is in review) proposes nothing and names
that version. Idempotent: a second run with the same files changes nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from llmops.common.errors import GovernanceError
from llmops.tenancy.actor import Actor
from llmops.tenancy.models import Membership, Organization
from prompts.services import prompts_sync


def _git_head(directory: Path) -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(directory), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


class Command(BaseCommand):
    help = "Propose prompt versions from a directory of YAML prompt files (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("directory")
        parser.add_argument("--org", required=True)
        parser.add_argument("--commit", default="", help="commit SHA (default: git HEAD of DIR)")
        parser.add_argument("--author", default="", help="commit author e-mail (counts as author)")
        parser.add_argument("--user", default="", help="act as this member (default: system)")

    def handle(self, *args, directory, org, commit="", author="", user="", **options):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"No organization '{org}'.")
        root = Path(directory)
        if not root.is_dir():
            raise CommandError(f"No directory '{directory}'.")
        paths = sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
        if not paths:
            raise CommandError(f"No *.yaml prompt files under '{directory}'.")
        files = [
            {"path": p.relative_to(root).as_posix(), "content": p.read_text(encoding="utf-8")}
            for p in paths
        ]
        actor = Actor.system_for(organization)
        if user:
            person = get_user_model().objects.filter(username=user).first()
            membership = (
                Membership.objects.for_org(organization).filter(user=person).first()
                if person
                else None
            )
            if membership is None:
                raise CommandError(f"'{user}' is not a member of {org}.")
            actor = Actor(org=organization, user=person, role=membership.role)
        commit = commit or _git_head(root)
        try:
            results = prompts_sync(actor=actor, files=files, commit=commit, author=author)
        except GovernanceError as exc:
            raise CommandError(exc.message)
        for r in results:
            if r["created"]:
                line = f"{r['name']} v{r['number']} (new version, {r['status']})"
            else:
                line = f"{r['name']} unchanged: identical to v{r['matches']} ({r['status']})"
                if r["latest"] not in (None, r["matches"]):
                    line += f", latest is v{r['latest']}"
            self.stdout.write(f"{r['path']}: {line}")
        created = sum(1 for r in results if r["created"])
        self.stdout.write(f"{created} new version(s), {len(results) - created} unchanged.")
