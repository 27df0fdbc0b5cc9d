"""Prompts as code: a sync of prompt files from git creates missing prompts and proposes a
version for each file whose content is new. Idempotent, and all or nothing."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from llmops.audit.services import audit_record
from llmops.common.errors import InvalidInput
from llmops.tenancy.actor import Actor
from llmops.tenancy.policy import require

from ..content import parse_prompt_file, validate_name
from ..models import Prompt, PromptVersion
from .prompts import prompt_create
from .versions import latest_number, version_create

MAX_SYNC_FILES = 500


def _parse_files(files: list) -> list[tuple[str, dict]]:
    """(path, parsed spec) of each file; a malformed file is a 400 naming its path, and a
    prompt defined by two files names both."""
    parsed = []
    seen: dict[str, str] = {}
    for i, item in enumerate(files):
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("path"), str)
            or not isinstance(item.get("content"), str)
        ):
            raise InvalidInput(
                f'files[{i}] must be {{"path": str, "content": str}}.', field=f"files[{i}]"
            )
        path = item["path"]
        spec = parse_prompt_file(item["content"], path=path)
        try:
            validate_name(spec["name"])
        except InvalidInput as exc:
            raise InvalidInput(f"{path}: {exc.message}", field=path)
        if spec["name"] in seen:
            raise InvalidInput(
                f"{path}: prompt '{spec['name']}' is also defined in {seen[spec['name']]}.",
                field=path,
            )
        seen[spec["name"]] = path
        parsed.append((path, spec))
    return parsed


def _sync_file(actor: Actor, path: str, spec: dict, *, commit: str, author: str) -> dict:
    """One file: its prompt (created when missing) and its version (proposed when new)."""
    prompt = Prompt.objects.for_org(actor.org).filter(name=spec["name"]).first()
    created_prompt = prompt is None
    if prompt is None:
        prompt = prompt_create(
            actor=actor, name=spec["name"], description=spec["description"], tags=spec["tags"]
        )
    try:
        version, created = version_create(
            actor=actor,
            prompt=prompt,
            model=spec["model"],
            template=spec["template"],
            messages=spec["messages"],
            params=spec["params"],
            tools=spec["tools"],
            variables=spec["variables"],
            message=spec["message"] or (f"Sync of {path} at {commit[:12]}" if commit else ""),
            submit=True,
            source=PromptVersion.Source.GIT,
            source_path=path,
            source_commit=commit,
            author_email=author,
        )
    except InvalidInput as exc:
        raise InvalidInput(f"{path}: {exc.message}", field=path, details=exc.details)
    return {
        "path": path,
        "name": prompt.name,
        "prompt_created": created_prompt,
        "created": created,
        "number": version.number,
        "status": version.status,
        "content_hash": version.content_hash,
        "matches": None if created else version.number,
        "latest": latest_number(prompt),
    }


@transaction.atomic
def prompts_sync(*, actor: Actor, files: Any, commit: str = "", author: str = "") -> list[dict]:
    """Prompt files from git: create missing prompts, and a new version (in review) for each
    file whose content differs from every version of its prompt; a file identical to an
    existing version proposes nothing and its result names that version (`matches`).
    Idempotent. All or nothing: an invalid file is a 400 naming its path."""
    require(actor, "prompt.propose")
    if not isinstance(files, list) or not files:
        raise InvalidInput('files must be a non-empty list of {"path", "content"}.', field="files")
    if len(files) > MAX_SYNC_FILES:
        raise InvalidInput(f"At most {MAX_SYNC_FILES} files per sync.", field="files")
    if not isinstance(commit, str) or len(commit) > 64:
        raise InvalidInput("commit must be a SHA of at most 64 characters.", field="commit")
    parsed = _parse_files(files)
    results = [_sync_file(actor, path, spec, commit=commit, author=author) for path, spec in parsed]
    audit_record(
        actor=actor,
        action="prompt.synced",
        target=("prompts.sync", commit or "-", f"sync {commit[:12]}" if commit else "sync"),
        details={
            "commit": commit,
            "author": author,
            "files": len(results),
            "new_versions": [f"{r['name']} v{r['number']}" for r in results if r["created"]],
        },
    )
    return results
