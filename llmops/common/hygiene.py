"""Text the application refuses, decided once for every way text comes in.

A NUL character cannot be stored in PostgreSQL text or jsonb, and an unpaired UTF-16
surrogate (JSON's "\\ud800" escape alone) cannot be encoded as UTF-8: either one used to end
in a server error somewhere between the database and the template. Such text is refused, not
cleaned, with a 400 naming the field: silently dropping characters would change what a
person or a client sent (a hash, a prompt) without telling them.

Used by the API's JSON parser (`llmops.common.parsers`), the ingest batch reader (per item),
`TextHygieneMiddleware` (paths, query strings and HTML form posts) and form fields that
decode JSON (`check_json`)."""

from __future__ import annotations

import math
import re

from .errors import InvalidInput

NUL_MESSAGE = "contains a NUL character"
SURROGATE_MESSAGE = "contains an unpaired surrogate"
NOT_FINITE_MESSAGE = "is not a finite number"

_SURROGATE = re.compile("[\ud800-\udfff]")
# Control characters other than tab, newline and carriage return (and DEL).
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def text_problem(text: str) -> str | None:
    """Why `text` is refused, or None. After decoding, any surrogate code point left in a
    Python string is unpaired (a valid pair decodes to one character)."""
    if "\x00" in text:
        return NUL_MESSAGE
    if _SURROGATE.search(text):
        return SURROGATE_MESSAGE
    return None


def has_control_characters(text: str) -> bool:
    """For one-line identifiers (model ids, labels): control characters other than tab,
    newline and carriage return."""
    return bool(_CONTROL.search(text))


def printable(text: str) -> str:
    """`text` safe to put in a message: NUL, control characters and surrogates escaped."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _join(path: str, key) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    key = printable(str(key))
    return f"{path}.{key}" if path else key


def json_problem(value, root: str = "") -> tuple[str, str] | None:
    """The first (field path, problem) in decoded JSON: a string or an object key with a NUL
    or an unpaired surrogate, or a number that is not finite (1e309 decodes to infinity).
    Iterative, so a body nested as deeply as the JSON decoder allows is walked too."""
    stack = [(root, value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                return path or "body", problem
        elif isinstance(item, float):
            if not math.isfinite(item):
                return path or "body", NOT_FINITE_MESSAGE
        elif isinstance(item, dict):
            children = []
            for key, child in item.items():
                if isinstance(key, str):
                    problem = text_problem(key)
                    if problem:
                        return _join(path, key), f"has a key that {problem}"
                children.append((_join(path, key), child))
            stack.extend(reversed(children))
        elif isinstance(item, list | tuple):
            stack.extend((_join(path, i), child) for i, child in reversed(list(enumerate(item))))
    return None


def invalid(field: str, problem: str) -> InvalidInput:
    """The one 400 for refused text: `{"error": {"code": "invalid", "message": "<field>
    contains a NUL character", "details": {"field": ..., "fields": {...}}}}`."""
    message = f"{field} {problem}."
    return InvalidInput(message, field=field, details={"field": field})


def check_json(value, root: str = ""):
    """Raise `InvalidInput` naming the field when decoded JSON holds refused text; return
    the value unchanged otherwise."""
    found = json_problem(value, root)
    if found is not None:
        raise invalid(*found)
    return value


def check_text(value: str, field: str) -> str:
    problem = text_problem(value)
    if problem:
        raise invalid(field, problem)
    return value
