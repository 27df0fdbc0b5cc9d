"""Forms for the webhook pages: they parse input; services decide."""

from django import forms


class WebhookForm(forms.Form):
    name = forms.CharField(max_length=100)
    url = forms.URLField(
        max_length=500,
        label="URL",
        assume_scheme="https",
        help_text="Receives a signed JSON POST per event (Slack incoming webhooks work as is).",
    )
    event_filter = forms.CharField(
        required=False,
        max_length=500,
        label="Only these kinds",
        help_text="Comma-separated kind prefixes, e.g. prompt., incident.; empty sends every event.",
    )


class RotateForm(forms.Form):
    keep_old_hours = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=24 * 7,
        label="Old secret keeps signing for (hours)",
        help_text="Both secrets sign each delivery meanwhile; 0 stops the old one at once.",
    )
