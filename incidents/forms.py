"""HTML forms of the incidents pages (rendering and coercion only; services validate)."""

from __future__ import annotations

from django import forms

from .models import Category, SeriousKind, Severity

SEVERITY_OPTIONAL = [("", "Pending (triage)")] + [
    (v, label) for v, label in Severity.choices if v != "pending"
]
MIN_SEVERITY = [("", "Any severity")] + [
    (v, f"{v} or worse") for v in Severity.values if v != "pending"
]
CATEGORY_ANY = [("", "Any category")] + list(Category.choices)


class IncidentForm(forms.Form):
    title = forms.CharField(max_length=200)
    category = forms.ChoiceField(choices=Category.choices)
    severity = forms.ChoiceField(choices=SEVERITY_OPTIONAL, required=False)
    summary = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5}),
        required=False,
        help_text="Markdown. What happened, who is affected, what you saw.",
    )
    detected_at = forms.DateTimeField(
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="When it was first detected (UTC); empty means now.",
    )
    users_affected = forms.IntegerField(required=False, min_value=0)
    cost_impact_usd = forms.DecimalField(
        required=False, min_value=0, max_digits=14, decimal_places=2, label="Cost impact (USD)"
    )


class RunbookForm(forms.Form):
    title = forms.CharField(max_length=200)
    body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8}), required=False, help_text="Markdown."
    )
    steps = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8}),
        required=False,
        help_text="One step per line, in order: `text | role | action` (role and action optional).",
    )
    category = forms.ChoiceField(choices=CATEGORY_ANY, required=False)
    min_severity = forms.ChoiceField(choices=MIN_SEVERITY, required=False)
    model_id = forms.CharField(
        max_length=200,
        required=False,
        label="Model",
        help_text="Attach when this model id is in evidence.",
    )
    prompt_name = forms.CharField(
        max_length=200,
        required=False,
        label="Prompt",
        help_text="Attach when this prompt is in evidence.",
    )
    change_note = forms.CharField(max_length=500, required=False, label="What changed")

    @staticmethod
    def initial_from(version) -> dict:
        return {
            "title": version.title,
            "body": version.body,
            "steps": "\n".join(
                " | ".join(p for p in (s["text"], s.get("role", ""), s.get("action", "")) if p)
                if not s.get("action")
                else f"{s['text']} | {s.get('role', '')} | {s['action']}"
                for s in version.steps
            ),
            "category": version.category,
            "min_severity": version.min_severity,
            "model_id": version.model_id,
            "prompt_name": version.prompt_name,
        }


class SeriousForm(forms.Form):
    kind = forms.ChoiceField(choices=SeriousKind.choices)
    aware_at = forms.DateTimeField(
        required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    initial_report_at = forms.DateTimeField(
        required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    final_report_at = forms.DateTimeField(
        required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
