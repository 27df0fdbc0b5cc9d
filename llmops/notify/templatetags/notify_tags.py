"""The bell in the header: one COUNT of the user's unread inbox rows in this organization."""

from django import template

from llmops.notify.selectors import unread_count as unread_count_for

register = template.Library()


@register.simple_tag(takes_context=True)
def unread_count(context) -> int:
    request = context.get("request")
    org = context.get("org")
    user = getattr(request, "user", None) or context.get("user")
    if org is None or user is None:
        return 0
    return unread_count_for(org=org, user=user)
