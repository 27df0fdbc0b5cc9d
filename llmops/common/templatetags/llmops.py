"""Template helpers: sanitised Markdown, dictionary look-ups. Permission checks (`can`) are
in tenancy's library: `{% load tenancy_tags %}`."""

from django import template
from django.utils.safestring import SafeString

from llmops.common.text import render_markdown

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text):
    # nh3 has sanitised the output against a strict allow-list; marking it safe is the point.
    return SafeString(render_markdown(text))


@register.filter
def get_item(mapping, key):
    try:
        return mapping.get(key)
    except AttributeError:
        return None
