"""Forms for tenancy pages: they parse input; services decide."""

from django import forms
from django.contrib.auth.forms import UserCreationForm

from .models import Role
from .policy import SCOPES, scopes_beyond_role


class InvitationForm(forms.Form):
    email = forms.EmailField(required=False, help_text="Optional: who the link is meant for.")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.REVIEWER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class TeamForm(forms.Form):
    name = forms.CharField(max_length=100)


class TeamMemberForm(forms.Form):
    username = forms.CharField(max_length=150)


class ApiKeyForm(forms.Form):
    KIND_CHOICES = [
        ("machine", "Machine key (CI, production app)"),
        ("personal", "Personal key (acts as you)"),
    ]
    name = forms.CharField(max_length=100)
    kind = forms.ChoiceField(choices=KIND_CHOICES, initial="machine", widget=forms.RadioSelect)
    scopes = forms.MultipleChoiceField(
        choices=[(s, s) for s in SCOPES], widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args, personal_for_role: str | None = None, **kwargs):
        """With `personal_for_role` (a member who may not manage keys): personal keys only,
        offering just the scopes that role may carry."""
        super().__init__(*args, **kwargs)
        if personal_for_role is not None:
            self.fields["kind"].choices = [("personal", "Personal key (acts as you)")]
            self.fields["kind"].initial = "personal"
            beyond = set(scopes_beyond_role(personal_for_role, SCOPES))
            self.fields["scopes"].choices = [(s, s) for s in SCOPES if s not in beyond]


class OrgSettingsForm(forms.Form):
    allow_floating_models = forms.BooleanField(
        required=False, label="Allow approving floating model ids"
    )
    retention_days = forms.IntegerField(
        min_value=1, max_value=3650, label="Keep generations for (days)"
    )


class InvitationSignupForm(UserCreationForm):
    """An account for someone who follows an invitation link and has none yet."""

    email = forms.EmailField(required=False)

    class Meta(UserCreationForm.Meta):
        fields = ("username", "email")
