"""`manage.py prompts_pull DIR --org SLUG [--label L]`

Writes one `<name>.yaml` per prompt into DIR: the version behind label L (prompts without
that label are skipped), or each prompt's latest version. Files whose content is already
the same are left untouched, so pull-then-push proposes nothing."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from llmops.tenancy.models import Organization
from prompts.content import dump_prompt_file
from prompts.models import Label, Prompt, PromptVersion


class Command(BaseCommand):
    help = "Write prompt files (YAML) for a label or the latest versions."

    def add_arguments(self, parser):
        parser.add_argument("directory")
        parser.add_argument("--org", required=True)
        parser.add_argument("--label", default="", help="e.g. production (default: latest)")

    def handle(self, *args, directory, org, label="", **options):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"No organization '{org}'.")
        root = Path(directory)
        root.mkdir(parents=True, exist_ok=True)
        written = unchanged = skipped = 0
        for prompt in Prompt.objects.for_org(organization).order_by("name"):
            if label:
                row = (
                    Label.objects.filter(prompt=prompt, name=label)
                    .select_related("version__model")
                    .first()
                )
                version = row.version if row else None
            else:
                version = (
                    PromptVersion.objects.filter(prompt=prompt)
                    .select_related("model")
                    .order_by("-number")
                    .first()
                )
            if version is None:
                skipped += 1
                continue
            path = root / f"{prompt.name}.yaml"
            text = dump_prompt_file(prompt=prompt, version=version)
            if path.exists() and path.read_text(encoding="utf-8") == text:
                unchanged += 1
                continue
            path.write_text(text, encoding="utf-8")
            written += 1
            self.stdout.write(f"{path}: {prompt.name} v{version.number}")
        self.stdout.write(f"{written} written, {unchanged} unchanged, {skipped} skipped.")
