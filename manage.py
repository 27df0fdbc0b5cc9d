#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys

# Commands that neither serve requests nor sign anything: they may run without SECRET_KEY
# (a developer checking migrations need not invent one). `check` is not among them.
KEYLESS_COMMANDS = {"makemigrations", "showmigrations", "sqlmigrate", "collectstatic", "help"}


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "llmops.settings")
    if len(sys.argv) > 1 and sys.argv[1] in KEYLESS_COMMANDS:
        os.environ.setdefault("LLMOPS_KEYLESS_COMMAND", "1")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
