"""Forms for catalog pages: they parse input; services decide."""

from __future__ import annotations

from django import forms

from .models import DataClass, Provider


class ProposeForm(forms.Form):
    provider = forms.ChoiceField(choices=Provider.choices)
    model_id = forms.CharField(
        max_length=200,
        label="Model id",
        help_text="The exact pinned id, e.g. claude-sonnet-4-5-20250929 or gpt-4o-2024-08-06.",
    )
    display_name = forms.CharField(max_length=200, required=False)
    platform_id = forms.CharField(
        max_length=300,
        required=False,
        label="Platform id",
        help_text="Bedrock model id, Azure deployment name, Vertex endpoint (optional).",
    )
    context_window = forms.IntegerField(
        min_value=1, required=False, label="Context window (tokens)"
    )
    input_price_per_mtok = forms.DecimalField(
        min_value=0, decimal_places=4, required=False, label="Input price (USD per 1M tokens)"
    )
    output_price_per_mtok = forms.DecimalField(
        min_value=0, decimal_places=4, required=False, label="Output price (USD per 1M tokens)"
    )
    use_cases = forms.CharField(
        required=False, help_text="Comma-separated, e.g. support answers, summarisation."
    )
    data_classes = forms.MultipleChoiceField(
        choices=DataClass.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Allowed data classes",
    )
    deprecation_date = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        label="Vendor deprecation date",
    )
    retirement_date = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        label="Vendor retirement date",
    )
    lifecycle_source_url = forms.URLField(
        required=False,
        assume_scheme="https",
        label="Source of the dates",
        help_text="The vendor’s deprecation page.",
    )
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), required=False)

    def service_fields(self) -> dict:
        data = dict(self.cleaned_data)
        data["use_cases"] = [u.strip() for u in data.get("use_cases", "").split(",") if u.strip()]
        return {k: v for k, v in data.items() if v not in (None, "") or k == "use_cases"}


class LifecycleForm(forms.Form):
    """Admins correct dates, prices and the replacement of a model version."""

    deprecation_date = ProposeForm.base_fields["deprecation_date"]
    retirement_date = ProposeForm.base_fields["retirement_date"]
    lifecycle_source_url = ProposeForm.base_fields["lifecycle_source_url"]
    input_price_per_mtok = ProposeForm.base_fields["input_price_per_mtok"]
    output_price_per_mtok = ProposeForm.base_fields["output_price_per_mtok"]
    replacement = forms.ChoiceField(required=False, label="Replacement model")

    def __init__(self, *args, replacements=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["replacement"].choices = [("", "—")] + [
            (m.pk, m.model_id) for m in replacements
        ]
