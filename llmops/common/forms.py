"""Form helpers shared by the HTML views."""

from __future__ import annotations

import re

from .errors import InvalidInput

_ROOT = re.compile(r"[.\[]")


def form_error(form, exc: InvalidInput, *, aliases: dict[str, str] | None = None) -> str | None:
    """Put a service's 400 on the form field it names, else on the form as a whole; return
    the field it went on (None for the form).

    The candidates are the error's `field`, then the names in `details.fields`; each is
    tried as it is, through `aliases` (service name -> form field name, e.g. `{"model":
    "model_id"}`), and by its root (`cases[3].input` -> `cases`, `metrics.acc` ->
    `metrics`). The first that is a field of the form takes the message, once."""
    aliases = aliases or {}
    names = [exc.field] if exc.field else []
    names += [n for n in ((exc.details or {}).get("fields") or {}) if n not in names]
    for name in names:
        name = str(name or "")
        root = _ROOT.split(name, maxsplit=1)[0]
        for candidate in (name, aliases.get(name), root, aliases.get(root)):
            if candidate and candidate in form.fields:
                form.add_error(candidate, exc.message)
                return candidate
    form.add_error(None, exc.message)
    return None
