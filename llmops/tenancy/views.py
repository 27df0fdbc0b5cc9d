"""Organization pages: home, members, invitations, teams, API keys, settings."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.generic import TemplateView

from llmops.common.errors import InvalidInput, NotFound

from . import selectors, services
from .forms import (
    ApiKeyForm,
    InvitationForm,
    InvitationSignupForm,
    OrgSettingsForm,
    RoleForm,
    TeamForm,
    TeamMemberForm,
)
from .mixins import OrgMixin
from .models import Role
from .policy import HUMAN_ONLY_SCOPES, can


def _pk(value) -> int:
    """An id posted by a form; anything else is an object that does not exist (404)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Http404("No such object.")


@login_required
def index(request):
    """`/`: the user's first organization, or a page saying they have none."""
    orgs = list(selectors.organizations_for_user(user=request.user)[:2])
    if len(orgs) >= 1:
        return redirect("tenancy:home", org_slug=orgs[0].slug)
    return render(request, "tenancy/no_org.html")


class HomeView(OrgMixin, TemplateView):
    template_name = "tenancy/home.html"

    def get_context_data(self, **kwargs):
        from django.apps import apps

        cards = []
        for config in apps.get_app_configs():
            hook = getattr(config, "home_cards", None)
            if hook:
                cards.extend(hook(self.actor))
        return super().get_context_data(
            cards=cards,
            member_count=selectors.member_list(org=self.org).count(),
            team_count=selectors.team_list(org=self.org).count(),
            **kwargs,
        )


class MembersView(OrgMixin, TemplateView):
    template_name = "tenancy/members.html"
    action = "member.view"

    def get_context_data(self, **kwargs):
        q = self.request.GET.get("q", "").strip()
        role = self.request.GET.get("role", "")
        page = self.paginate(selectors.member_list(org=self.org, query=q, role=role))
        return super().get_context_data(
            page=page,
            q=q,
            role=role,
            roles=Role.choices,
            invite_form=kwargs.pop("invite_form", None) or InvitationForm(),
            invitations=selectors.invitation_list(org=self.org),
            **kwargs,
        )

    def post(self, request, *args, **kwargs):
        self.require("member.manage")
        op = request.POST.get("op")
        # Nobody is added to an organization without accepting an invitation: there is no
        # direct "add by username" (it joined people without consent and told whether an
        # account exists).
        if op == "invite":
            form = InvitationForm(request.POST)
            if not form.is_valid():
                return self.render_to_response(self.get_context_data(invite_form=form))
            _, token = services.invitation_create(actor=self.actor, **form.cleaned_data)
            messages.success(request, "Invitation link created. Copy it now: it is shown once.")
            # Shown in this response only: the token never waits in the session table.
            response = self.render_to_response(
                self.get_context_data(
                    invite_link=request.build_absolute_uri(
                        reverse("invitation_accept", args=[token])
                    )
                )
            )
            response["Cache-Control"] = "no-store"
            return response
        if op == "revoke_invite":
            inv = selectors.invitation_list(org=self.org).get(
                pk=_pk(request.POST.get("invitation"))
            )
            services.invitation_revoke(actor=self.actor, invitation=inv)
            messages.success(request, "Invitation revoked.")
        return redirect("tenancy:members", org_slug=self.org.slug)


class MemberDetailView(OrgMixin, TemplateView):
    template_name = "tenancy/member_detail.html"
    action = "member.manage"

    def get_context_data(self, **kwargs):
        membership = selectors.member_get(org=self.org, membership_id=self.kwargs["membership_id"])
        kwargs.setdefault("form", RoleForm(initial={"role": membership.role}))  # or the posted one
        return super().get_context_data(m=membership, **kwargs)

    def post(self, request, *args, **kwargs):
        membership = selectors.member_get(org=self.org, membership_id=self.kwargs["membership_id"])
        if request.POST.get("op") == "remove":
            services.member_remove(actor=self.actor, membership=membership)
            messages.success(request, f"Removed {membership.user.username}.")
            return redirect("tenancy:members", org_slug=self.org.slug)
        form = RoleForm(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form))
        services.member_change_role(
            actor=self.actor, membership=membership, role=form.cleaned_data["role"]
        )
        messages.success(request, f"{membership.user.username} is now {form.cleaned_data['role']}.")
        return redirect("tenancy:members", org_slug=self.org.slug)


class TeamsView(OrgMixin, TemplateView):
    template_name = "tenancy/teams.html"
    action = "member.view"

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            page=self.paginate(selectors.team_list(org=self.org)),
            form=kwargs.pop("form", None) or TeamForm(),
            **kwargs,
        )

    def post(self, request, *args, **kwargs):
        form = TeamForm(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form))
        team = services.team_create(actor=self.actor, name=form.cleaned_data["name"])
        messages.success(request, f"Team {team.name} created.")
        return redirect("tenancy:team_detail", org_slug=self.org.slug, team_id=team.pk)


class TeamDetailView(OrgMixin, TemplateView):
    template_name = "tenancy/team_detail.html"
    action = "member.view"

    def get_context_data(self, **kwargs):
        team = selectors.team_get(org=self.org, team_id=self.kwargs["team_id"])
        return super().get_context_data(
            team=team,
            members=selectors.team_members(team=team),
            form=kwargs.pop("form", None) or TeamMemberForm(),
            **kwargs,
        )

    def post(self, request, *args, **kwargs):
        team = selectors.team_get(org=self.org, team_id=self.kwargs["team_id"])
        op = request.POST.get("op")
        if op == "delete":
            services.team_delete(actor=self.actor, team=team)
            messages.success(request, f"Team {team.name} deleted.")
            return redirect("tenancy:teams", org_slug=self.org.slug)
        if op == "remove":
            services.team_remove_member(
                actor=self.actor, team=team, user_id=_pk(request.POST.get("user"))
            )
            messages.success(request, "Removed from the team.")
        else:
            form = TeamMemberForm(request.POST)
            if not form.is_valid():
                return self.render_to_response(self.get_context_data(form=form))
            services.team_add_member(
                actor=self.actor, team=team, username=form.cleaned_data["username"]
            )
            messages.success(request, f"Added {form.cleaned_data['username']}.")
        return redirect("tenancy:team_detail", org_slug=self.org.slug, team_id=team.pk)


class ApiKeysView(OrgMixin, TemplateView):
    """Admins manage every key of the organization; any other member sees and mints only
    their own personal keys (never beyond their role)."""

    template_name = "tenancy/api_keys.html"
    action = "org.view"

    @property
    def manages(self) -> bool:
        return can(self.actor, "api_key.manage")

    def keys(self, include_revoked: bool = False):
        return selectors.api_key_list(
            org=self.org,
            include_revoked=include_revoked,
            user=None if self.manages else self.request.user,
        )

    def make_form(self, data=None):
        return ApiKeyForm(data, personal_for_role=None if self.manages else self.actor.role)

    def get_context_data(self, **kwargs):
        show_revoked = self.request.GET.get("revoked") == "1"
        return super().get_context_data(
            page=self.paginate(self.keys(include_revoked=show_revoked)),
            show_revoked=show_revoked,
            manages=self.manages,
            form=kwargs.pop("form", None) or self.make_form(),
            human_only=sorted(HUMAN_ONLY_SCOPES),
            **kwargs,
        )

    def post(self, request, *args, **kwargs):
        if request.POST.get("op") == "revoke":
            key = self.keys(include_revoked=True).get(pk=_pk(request.POST.get("key")))
            services.api_key_revoke(actor=self.actor, key=key)
            messages.success(request, f"Key {key.prefix} revoked.")
            return redirect("tenancy:api_keys", org_slug=self.org.slug)
        form = self.make_form(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form))
        user = request.user if form.cleaned_data["kind"] == "personal" else None
        key, raw = services.api_key_create(
            actor=self.actor,
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scopes"],
            user=user,
        )
        # The key is shown in this response only: never parked in the session table for a
        # later page view, nor kept in the browser's cache.
        response = self.render_to_response(
            self.get_context_data(new_key={"key": raw, "name": key.name})
        )
        response["Cache-Control"] = "no-store"
        return response


class SettingsView(OrgMixin, TemplateView):
    template_name = "tenancy/settings.html"
    action = "org.manage"

    def get_context_data(self, **kwargs):
        form = kwargs.pop("form", None) or OrgSettingsForm(
            initial={
                "allow_floating_models": self.org.allow_floating_models,
                "retention_days": self.org.retention_days,
            }
        )
        return super().get_context_data(form=form, **kwargs)

    def post(self, request, *args, **kwargs):
        form = OrgSettingsForm(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form))
        services.org_settings_update(actor=self.actor, **form.cleaned_data)
        messages.success(request, "Settings saved.")
        return redirect("tenancy:settings", org_slug=self.org.slug)


def invitation_accept(request, token: str):
    """Accept an invitation link: logged in, with one click; otherwise log in first, or
    create an account here (the link is the permission to do so)."""
    inv = services.invitation_by_token(token)
    if inv is None:
        return render(request, "tenancy/invitation_invalid.html", status=404)
    if not request.user.is_authenticated:
        form = InvitationSignupForm(request.POST or None, initial={"email": inv.email})
        if request.method == "POST" and form.is_valid():
            try:
                membership = services.invitation_signup(
                    token=token,
                    username=form.cleaned_data["username"],
                    password=form.cleaned_data["password1"],
                    email=form.cleaned_data.get("email") or "",
                )
            except InvalidInput as exc:
                form.add_error("username", exc.message)
            except NotFound:
                return render(request, "tenancy/invitation_invalid.html", status=404)
            else:
                auth_login(
                    request,
                    membership.user,
                    backend="django.contrib.auth.backends.ModelBackend",
                )
                messages.success(
                    request,
                    f"Welcome! You joined {membership.organization.name} as {membership.role}.",
                )
                return redirect("tenancy:home", org_slug=membership.organization.slug)
        return render(
            request,
            "tenancy/invitation_accept.html",
            {
                "invitation": inv,
                "signup_form": form,
                "login_url": f"{reverse('login')}?{urlencode({'next': request.path})}",
            },
        )
    if request.method == "POST":
        membership = services.invitation_accept(token=token, user=request.user)
        messages.success(
            request, f"You joined {membership.organization.name} as {membership.role}."
        )
        return redirect("tenancy:home", org_slug=membership.organization.slug)
    return render(request, "tenancy/invitation_accept.html", {"invitation": inv})
