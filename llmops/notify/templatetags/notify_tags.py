from django import template

register = template.Library()


@register.simple_tag(takes_context=True)
def unread_count(context):
    """Placeholder until the inbox exists."""
    return 0
