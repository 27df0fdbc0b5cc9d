"""Shared pieces of the benchmark runner: the report line, Django setup against a fresh
PostgreSQL database, and small timing helpers.

A benchmark module is `benchmarks/bench_<name>.py` with `def main(report) -> None`;
`report(name, value, unit, goal="")` prints one aligned line and keeps the figure.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/llmops_bench"


@dataclass
class Figure:
    bench: str
    name: str
    value: float
    unit: str
    goal: str = ""


@dataclass
class Reporter:
    """Callable handed to each benchmark's main(); prints aligned lines as figures arrive."""

    bench: str = ""
    figures: list[Figure] = field(default_factory=list)
    out: object = sys.stdout

    def __call__(self, name: str, value: float, unit: str, goal: str = "") -> None:
        figure = Figure(self.bench, name, value, unit, goal)
        self.figures.append(figure)
        print(format_line(figure), file=self.out, flush=True)


def format_value(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 1:
            return f"{value:,.2f}"
        return f"{value:.3g}"
    return str(value)


def format_line(figure: Figure) -> str:
    name = f"{figure.bench}.{figure.name}" if figure.bench else figure.name
    goal = f"  {figure.goal}" if figure.goal else ""
    return f"{name:<44} {format_value(figure.value):>14} {figure.unit:<12}{goal}".rstrip()


@contextmanager
def timer() -> Iterator[dict]:
    """with timer() as t: ...; t["seconds"] afterwards."""
    result = {"seconds": 0.0}
    start = time.perf_counter()
    try:
        yield result
    finally:
        result["seconds"] = time.perf_counter() - start


def database_url() -> str:
    return os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL


def recreate_database(url: str) -> None:
    """Drop and create the bench database named in `url` (PostgreSQL only)."""
    import psycopg

    parts = urlsplit(url)
    if not parts.scheme.startswith("postgres"):
        raise SystemExit(f"benchmarks need PostgreSQL, got DATABASE_URL={url}")
    name = parts.path.lstrip("/")
    if not name or not name.replace("_", "").isalnum():
        raise SystemExit(f"unexpected database name {name!r}")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def setup_django(*, fresh: bool = True) -> None:
    """Point Django at the bench database (fresh and migrated unless fresh=False).

    Production-like settings: DEBUG off (so no query log eats memory), tasks eager, no
    broker needed."""
    url = database_url()
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DEBUG", "0")
    os.environ.setdefault("SECRET_KEY", "benchmark-only-secret-key-" + "x" * 40)
    os.environ.setdefault("ALLOWED_HOSTS", "localhost")
    os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "1")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("AXES_ENABLED", "0")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "llmops.settings")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    if fresh:
        recreate_database(url)
    import django

    django.setup()
    if fresh:
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)


def make_org(slug: str):
    """An organization with an admin user, made through the tenancy service."""
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from llmops.tenancy.services import org_create

    user, _ = get_user_model().objects.get_or_create(username=f"{slug}-admin")
    with transaction.atomic():
        return org_create(slug=slug, name=slug.title(), admin=user)
