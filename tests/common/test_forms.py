"""llmops.common.forms.form_error: a service's 400 lands on the form field it names (as
named, through an alias, or by its root), else on the form."""

from __future__ import annotations

from django import forms

from llmops.common.errors import InvalidInput
from llmops.common.forms import form_error


class Sample(forms.Form):
    name = forms.CharField(required=False)
    cases = forms.CharField(required=False)
    model_id = forms.CharField(required=False)


def placed(exc, **kwargs):
    form = Sample(data={})
    assert form.is_valid()
    where = form_error(form, exc, **kwargs)
    return where, form.errors.get(where or "__all__")


def test_named_field():
    assert placed(InvalidInput("Too long.", field="name")) == ("name", ["Too long."])


def test_root_of_a_nested_name():
    exc = InvalidInput("A case needs an input.", field="cases[3].input")
    assert placed(exc) == ("cases", ["A case needs an input."])


def test_details_fields_when_no_field():
    exc = InvalidInput("Bad.", errors={"unknown": ["x"], "name": ["Bad."]})
    assert placed(exc) == ("name", ["Bad."])


def test_alias():
    exc = InvalidInput("Unknown model.", field="model")
    assert placed(exc, aliases={"model": "model_id"}) == ("model_id", ["Unknown model."])
    assert placed(exc) == (None, ["Unknown model."])


def test_unknown_or_no_field_goes_on_the_form():
    assert placed(InvalidInput("Nope.", field="op")) == (None, ["Nope."])
    assert placed(InvalidInput("Nope.")) == (None, ["Nope."])
