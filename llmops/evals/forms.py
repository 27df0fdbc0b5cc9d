"""Forms for evals pages: they parse input; services decide."""

from __future__ import annotations

import json

from django import forms

from llmops.common.hygiene import json_problem

from .models import EvalCase


def _json_field(value: str, *, required: bool):
    value = (value or "").strip()
    if not value:
        if required:
            raise forms.ValidationError("Required.")
        return None
    try:
        decoded = json.loads(value)
    except json.JSONDecodeError:
        # Plain text is a JSON string: most inputs are a question.
        return value
    except RecursionError:
        raise forms.ValidationError("The JSON is nested too deeply.")
    _refuse(decoded, "The JSON")
    return decoded


def _refuse(value, where: str) -> None:
    """Refused text (llmops.common.hygiene) inside JSON a person typed or uploaded: JSON's
    "\\u0000" and "\\ud800" escapes decode to characters no database stores."""
    found = json_problem(value)
    if found is not None:
        field, problem = found
        inside = "" if field == "body" else f" at {field}"
        raise forms.ValidationError(f"{where}{inside} {problem}.")


class DatasetForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    tags = forms.CharField(required=False, help_text="Comma-separated.")


class CaseForm(forms.Form):
    input = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text='JSON (e.g. {"question": "..."}) or plain text.',
    )
    expected = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        label="Expected output",
        help_text="JSON or plain text; or describe the criteria below.",
    )
    criteria = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    tags = forms.CharField(required=False, help_text="Comma-separated.")

    def clean_input(self):
        return _json_field(self.cleaned_data["input"], required=True)

    def clean_expected(self):
        return _json_field(self.cleaned_data["expected"], required=False)


class ImportForm(forms.Form):
    file = forms.FileField(
        required=False,
        label="JSONL file",
        help_text='One case per line: {"input": ..., "expected": ..., "criteria": "...", "tags": [...]}. At most 5,000.',
    )
    text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}), required=False, label="…or paste JSONL"
    )

    def clean(self):
        data = super().clean()
        upload = data.get("file")
        raw = upload.read().decode("utf-8", errors="replace") if upload else data.get("text", "")
        if not raw.strip():
            raise forms.ValidationError("Choose a file or paste JSONL.")
        cases = []
        for number, line in enumerate(raw.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                case = json.loads(line)
            except json.JSONDecodeError as exc:
                raise forms.ValidationError(f"Line {number} is not valid JSON: {exc.msg}.")
            except RecursionError:
                raise forms.ValidationError(f"Line {number} is nested too deeply.")
            _refuse(case, f"Line {number}")
            cases.append(case)
        data["cases"] = cases
        return data


CASE_SOURCE_CHOICES = [("", "All sources"), *EvalCase.SourceKind.choices]


class PolicyForm(forms.Form):
    name = forms.CharField(max_length=200)
    thresholds = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One per line: metric op value, e.g. 'pass_rate >= 0.9' (ops: >= > <= < ==).",
    )
    min_cases = forms.IntegerField(
        min_value=0, max_value=1_000_000, initial=1, label="Minimum cases"
    )
    required_dataset = forms.ChoiceField(required=False)
    is_default = forms.BooleanField(required=False, label="Default policy of the organization")

    def __init__(self, *args, datasets=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["required_dataset"].choices = [("", "Any dataset")] + [
            (d.pk, d.name) for d in datasets
        ]

    def clean_thresholds(self):
        out = []
        for number, line in enumerate(self.cleaned_data["thresholds"].splitlines(), start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 3:
                raise forms.ValidationError(f"Line {number}: write 'metric op value'.")
            metric, op, value = parts
            try:
                number_value = float(value)
            except ValueError:
                raise forms.ValidationError(f"Line {number}: '{value}' is not a number.")
            out.append({"metric": metric, "op": op, "value": number_value})
        return out


def thresholds_text(thresholds) -> str:
    return "\n".join(f"{t['metric']} {t['op']} {t['value']:g}" for t in thresholds or [])
