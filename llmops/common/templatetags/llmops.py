"""Template helpers: sanitised Markdown, permission checks through the one policy."""

from django import template
from django.utils.safestring import SafeString

from llmops.common.text import render_markdown

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text):
    # nh3 has sanitised the output against a strict allow-list; marking it safe is the point.
    return SafeString(render_markdown(text))


@register.simple_tag(takes_context=True)
def can(context, action, obj=None):
    from llmops.tenancy.policy import can as policy_can

    actor = context.get("actor")
    if actor is None:
        return False
    return policy_can(actor, action, obj)


@register.filter
def get_item(mapping, key):
    try:
        return mapping.get(key)
    except AttributeError:
        return None
