"""Forms for the review pages: they parse input; services decide."""

from __future__ import annotations

import json

from django import forms

from llmops.common import hygiene
from llmops.common.errors import InvalidInput

# Bounds of the rule filters: far beyond any real value, small enough for the database.
MAX_VERSION = 2**31 - 1
MAX_LATENCY_MS = 10**9
MAX_COST_USD = 10**6


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


class QueueForm(forms.Form):
    name = forms.CharField(max_length=200)
    instructions = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 4}), help_text="Markdown."
    )
    reviewers_per_item = forms.IntegerField(
        min_value=1, max_value=10, initial=1, help_text="Overlap: 2 or more feeds agreement."
    )
    lease_minutes = forms.IntegerField(min_value=1, max_value=240, initial=10)
    sla_hours = forms.IntegerField(
        required=False, min_value=1, max_value=2160, label="Due within (hours)"
    )
    eval_dataset = forms.ChoiceField(required=False, label="Eval dataset for 'add to evals'")
    active = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args, datasets=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["eval_dataset"].choices = [("", "— none —")] + [
            (str(d.pk), d.name) for d in datasets
        ]


class RubricForm(forms.Form):
    rubric = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 14, "spellcheck": "false"}),
        help_text='JSON: {"questions": [{"key", "label", "type", "required", "options" | "min", "max", "labels"}]}',
    )

    def clean_rubric(self):
        try:
            value = json.loads(self.cleaned_data["rubric"], parse_constant=_no_constant)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc.msg} (line {exc.lineno}).")
        except (ValueError, RecursionError) as exc:
            # Too deep for the decoder, an integer of thousands of digits, NaN or Infinity.
            message = str(exc) if isinstance(exc, ValueError) else "nested too deeply"
            raise forms.ValidationError(f"Not valid JSON: {message}.")
        try:
            return hygiene.check_json(value, "rubric")
        except InvalidInput as exc:
            raise forms.ValidationError(exc.message)


class RuleForm(forms.Form):
    name = forms.CharField(max_length=200, required=False)
    rate = forms.FloatField(min_value=0, max_value=1, initial=0.05, help_text="0..1")
    priority = forms.IntegerField(initial=0, min_value=-100, max_value=100)
    prompt = forms.CharField(max_length=200, required=False)
    version = forms.IntegerField(required=False, min_value=1, max_value=MAX_VERSION)
    model = forms.CharField(max_length=200, required=False)
    tags = forms.CharField(
        max_length=500, required=False, help_text="Comma-separated; all must be present."
    )
    metadata = forms.CharField(
        max_length=500, required=False, help_text="key=value, comma-separated."
    )
    errors_only = forms.BooleanField(required=False)
    latency_above = forms.IntegerField(
        required=False, min_value=0, max_value=MAX_LATENCY_MS, label="Latency above (ms)"
    )
    cost_above = forms.DecimalField(
        required=False, min_value=0, max_value=MAX_COST_USD, label="Cost above (USD)"
    )

    def filters(self) -> dict:
        data = self.cleaned_data
        out = {}
        for key in ("prompt", "version", "model", "latency_above", "cost_above"):
            if data.get(key) not in (None, ""):
                out[key] = data[key] if key != "cost_above" else float(data[key])
        if data.get("tags"):
            out["tags"] = [t.strip() for t in data["tags"].split(",") if t.strip()]
        if data.get("metadata"):
            pairs = {}
            for part in data["metadata"].split(","):
                if "=" in part:
                    k, v = part.split("=", 1)
                    pairs[k.strip()] = v.strip()
            out["metadata"] = pairs
        if data.get("errors_only"):
            out["errors_only"] = True
        return out


class GrantForm(forms.Form):
    username = forms.CharField(max_length=150, required=False)
    team = forms.IntegerField(required=False)


class BackfillForm(forms.Form):
    since = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    until = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
