"""Template helpers of the one policy: `{% load tenancy_tags %}{% can "model.propose" as x %}`."""

from django import template

from llmops.tenancy.policy import can as policy_can

register = template.Library()


@register.simple_tag(takes_context=True)
def can(context, action, obj=None):
    actor = context.get("actor")
    if actor is None:
        return False
    return policy_can(actor, action, obj)
