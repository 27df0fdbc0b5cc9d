"""Template helpers for eval pages. Output stays plain text for auto-escaping."""

import json

from django import template

register = template.Library()


@register.filter
def json_pretty(value, limit: int = 2000) -> str:
    """Strings as they are, anything else as indented JSON, cut to `limit` characters."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + " …"


@register.filter
def percent(value) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "—"
    return f"{value * 100:.1f}%".replace(".0%", "%")


@register.filter
def signed(value) -> str:
    if value is None:
        return "—"
    return f"{value:+.4g}"
