"""The tenant-isolation registry. Each app registers one case per organization route
(HTML and API) in `tests/isolation/cases_<app>.py`; the suite requests each case as a
member (or key) of globex against acme's objects and expects 404 with nothing changed.

A case names a URL (namespace:name) and builds its kwargs from acme's world; the
completeness test walks the resolver and fails when a tenant route has no case."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

CASES: list[Case] = []
WORLD_BUILDERS: list[Callable] = []


@dataclass
class Case:
    route: str  # "namespace:name"
    method: str = "get"
    kwargs: Callable[[object], dict] = field(default=lambda acme: {})
    data: Callable[[object], dict] | None = None
    # For routes whose URL names no object (lists, creates): "list" checks that none of
    # acme's markers appear in globex's answer; "create" accepts any non-5xx answer.
    # Every kind also checks that no tenant-owned row of acme (any model with an
    # `organization` foreign key, its teams' members, the organization itself) was
    # created, changed or deleted by the request.
    kind: str = "object"
    markers: Callable[[object], list[str]] | None = None
    scopes: tuple[str, ...] = ()  # API: scopes of the globex key used

    @property
    def is_api(self) -> bool:
        return self.route.split(":", 1)[0].endswith("_api")

    @property
    def id(self) -> str:
        return f"{self.method.upper()} {self.route}"


def register(*cases: Case) -> None:
    CASES.extend(cases)


def world_builder(fn: Callable) -> Callable:
    """fn(acme, globex) adds each app's objects to both worlds' `objects`."""
    WORLD_BUILDERS.append(fn)
    return fn


def load_all() -> None:
    import importlib
    import pkgutil

    import tests.isolation as package

    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("cases_"):
            importlib.import_module(f"tests.isolation.{info.name}")
