"""With DEBUG off a SECRET_KEY is required, except for commands that neither serve nor sign
(manage.py marks them), so checking migrations needs no invented key."""

import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

ROOT = Path(settings.BASE_DIR)


def _run(*args, tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "DEBUG", "LLMOPS_TESTING", "LLMOPS_KEYLESS_COMMAND"}
    }
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_makemigrations_check_runs_without_a_secret_key_but_check_does_not(tmp_path):
    ok = _run("makemigrations", "--check", "--dry-run", tmp_path=tmp_path)
    assert ok.returncode == 0, ok.stderr[-2000:]
    refused = _run("check", tmp_path=tmp_path)
    assert refused.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in refused.stderr
