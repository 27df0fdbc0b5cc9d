"""prompts_push / prompts_pull: idempotent round trip through the sync service."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from prompts import services
from prompts.models import Prompt, PromptVersion

from .conftest import MODEL_ID, approved_version

FILE = f"""name: triage
description: Route tickets
tags: [support]
model: {MODEL_ID}
messages:
  - role: system
    content: You route tickets for {{{{ product }}}}.
  - role: user
    content: "{{{{ ticket }}}}"
params:
  temperature: 0
tools:
  - name: route
    description: Send to a queue
    parameters:
      type: object
      properties:
        queue: {{type: string}}
      required: [queue]
"""


def _push(path, *extra):
    out = StringIO()
    call_command("prompts_push", str(path), "--org", "acme", *extra, stdout=out)
    return out.getvalue()


def test_push_is_idempotent_and_records_path_and_commit(acme, model, tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "triage.yaml").write_text(FILE)
    out = _push(tmp_path, "--commit", "c0ffee")
    assert "1 new version" in out
    v = PromptVersion.objects.get(prompt__name="triage")
    assert (v.source, v.source_path, v.source_commit) == ("git", "sub/triage.yaml", "c0ffee")
    assert v.variables == ["product", "ticket"] and v.tools[0]["name"] == "route"
    assert "0 new version(s), 1 unchanged" in _push(tmp_path, "--commit", "later")
    assert PromptVersion.objects.filter(prompt__name="triage").count() == 1


def test_push_errors(acme, model, tmp_path):
    with pytest.raises(CommandError):
        _push(tmp_path)  # no files
    (tmp_path / "bad.yaml").write_text("name: x\nmodel: nope-2020-01-01\ntemplate: hi\n")
    with pytest.raises(CommandError, match="bad.yaml"):
        _push(tmp_path)
    assert not Prompt.objects.exists()


def test_pull_then_push_changes_nothing(acme, prompt, tmp_path):
    v = approved_version(acme, prompt)
    services.label_deploy(actor=acme.actor("maint2"), prompt=prompt, label="production", version=v)
    out = StringIO()
    call_command(
        "prompts_pull", str(tmp_path), "--org", "acme", "--label", "production", stdout=out
    )
    text = (tmp_path / "support-reply.yaml").read_text()
    assert "model: " + MODEL_ID in text and "customer_name" in text
    assert "0 new version(s)" in _push(tmp_path)
    call_command(
        "prompts_pull", str(tmp_path), "--org", "acme", "--label", "production", stdout=out
    )
    assert "0 written, 1 unchanged" in out.getvalue()
    out = StringIO()
    call_command(
        "prompts_pull", str(tmp_path / "x"), "--org", "acme", "--label", "canary", stdout=out
    )
    assert "1 skipped" in out.getvalue()
