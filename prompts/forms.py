"""HTML forms of the prompt registry: shape and parse input; the services hold the rules."""

from __future__ import annotations

import json

from django import forms

from .models import Approval


class PromptForm(forms.Form):
    name = forms.CharField(
        max_length=100, help_text="Lowercase letters, digits, '-' and '_', e.g. support-reply."
    )
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    tags = forms.CharField(required=False, help_text="Comma-separated, e.g. support, email.")
    required_approvals = forms.IntegerField(min_value=1, max_value=10, initial=1)


class PromptSettingsForm(forms.Form):
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    tags = forms.CharField(required=False, help_text="Comma-separated.")
    required_approvals = forms.IntegerField(min_value=1, max_value=10)
    eval_policy = forms.ChoiceField(
        required=False, help_text="Empty: the organization's default policy."
    )

    def __init__(self, *args, policies=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["eval_policy"].choices = [("", "Organization default")] + [
            (str(p.pk), p.name) for p in policies
        ]


def _json_field(value: str, what: str, default):
    value = (value or "").strip()
    if not value:
        return default
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise forms.ValidationError(f"{what} is not valid JSON: {exc.msg} (line {exc.lineno}).")


class ProposeForm(forms.Form):
    KIND_CHOICES = [("template", "Text template"), ("messages", "Chat messages (JSON)")]
    kind = forms.ChoiceField(choices=KIND_CHOICES, widget=forms.RadioSelect, initial="template")
    template = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 12, "data-variables-source": "1"}),
        required=False,
        help_text="Use {{ variable }} placeholders.",
    )
    messages = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 12, "data-variables-source": "1"}),
        required=False,
        help_text='A JSON list: [{"role": "system", "content": "..."}, ...]',
    )
    model = forms.ChoiceField(help_text="Pinned model id from the catalog.")
    params = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text='JSON object, e.g. {"temperature": 0.2, "max_tokens": 800}',
    )
    tools = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5}),
        required=False,
        help_text='JSON list of tools: [{"name", "description", "parameters": {JSON Schema}}]',
    )
    message = forms.CharField(
        label="Change message", widget=forms.Textarea(attrs={"rows": 2}), required=False
    )
    submit_for_review = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args, models=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["model"].choices = [(m.model_id, f"{m.model_id} ({m.status})") for m in models]

    def clean_params(self):
        return _json_field(self.cleaned_data.get("params"), "params", {})

    def clean_tools(self):
        return _json_field(self.cleaned_data.get("tools"), "tools", [])

    def clean(self):
        data = super().clean()
        if data.get("kind") == "messages":
            try:
                data["messages_json"] = _json_field(data.get("messages"), "messages", None)
            except forms.ValidationError as exc:
                self.add_error("messages", exc)
            if data.get("messages_json") is None and "messages" not in self.errors:
                self.add_error("messages", "Give the chat messages as JSON.")
        elif not (data.get("template") or "").strip():
            self.add_error("template", "The template is empty.")
        return data


class ReviewForm(forms.Form):
    decision = forms.ChoiceField(choices=Approval.Decision.choices, widget=forms.RadioSelect)
    comment = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        help_text="Required for request changes and reject.",
    )
    break_glass_reason = forms.CharField(
        label="Break-glass reason (admins only)",
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        help_text="Only to proceed past a rule that would block (no passing eval, no second "
        "approver). Recorded forever, audited and sent to every admin.",
    )


class DeployForm(forms.Form):
    label = forms.CharField(max_length=60, initial="production")
    version = forms.ChoiceField()
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    break_glass_reason = forms.CharField(
        label="Break-glass reason (admins only)",
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        help_text="Only to deploy past a rule (e.g. a model now suspended). Audited forever.",
    )

    def __init__(self, *args, versions=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["version"].choices = [
            (str(v.number), f"v{v.number} ({v.status})") for v in versions
        ]


class OwnerForm(forms.Form):
    username = forms.CharField(required=False, label="Member (username)")
    team = forms.ChoiceField(required=False)
    approve_prompt = forms.BooleanField(required=False, initial=True, label="May approve")
    deploy_prompt = forms.BooleanField(required=False, initial=True, label="May deploy")

    def __init__(self, *args, teams=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].choices = [("", "—")] + [(str(t.pk), t.name) for t in teams]

    def perms(self) -> list[str]:
        return [p for p in ("approve_prompt", "deploy_prompt") if self.cleaned_data.get(p)]
