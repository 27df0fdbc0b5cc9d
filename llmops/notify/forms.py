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
