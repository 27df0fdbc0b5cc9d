"""Writes for tenancy: organizations, members, invitations, teams, API keys.
Each service checks permission, validates, writes, audits, in one transaction."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from llmops.audit.services import audit_record
from llmops.common.errors import InvalidInput, NotFound, PolicyViolation

from . import guardian, keys
from .actor import Actor
from .authentication import key_cache_forget, org_memo_forget
from .models import ApiKey, Invitation, Membership, Organization, Role, Team
from .policy import HUMAN_ONLY_SCOPES, SCOPES, require, scopes_beyond_role
from .selectors import organization_cache_clear

User = get_user_model()

INVITATION_DAYS = 7


def _after_write(fn) -> None:
    """Drop a cache entry now and again once the transaction commits: the first stops this
    process from serving the stale entry, the second removes one a concurrent request may
    have re-read from the database before the commit."""
    fn()
    transaction.on_commit(fn)


def _role(value: str) -> str:
    if value not in Role.values:
        raise InvalidInput(
            f"Unknown role '{value}'; use one of {', '.join(Role.values)}.", field="role"
        )
    return value


@transaction.atomic
def org_create(*, slug: str, name: str, admin, actor_label: str = "system") -> Organization:
    slug = slugify(slug)
    if not slug:
        raise InvalidInput("A slug is required.", field="slug")
    if Organization.objects.filter(slug=slug).exists():
        raise InvalidInput(f"An organization with slug '{slug}' already exists.", field="slug")
    org = Organization.objects.create(slug=slug, name=name or slug)
    Membership.objects.create(user=admin, organization=org, role=Role.ADMIN)
    system = Actor.system_for(org)
    audit_record(
        actor=system,
        action="organization.created",
        target=org,
        details={"slug": slug, "admin": admin.username},
    )
    audit_record(
        actor=system,
        action="member.added",
        target=("auth.user", admin.pk, admin.username),
        details={"role": Role.ADMIN},
    )
    from django.apps import apps

    # Apps that need per-organization defaults (e.g. the default eval policy) hook in here.
    for config in apps.get_app_configs():
        hook = getattr(config, "organization_created", None)
        if hook:
            hook(org)
    return org


@transaction.atomic
def org_settings_update(
    *, actor: Actor, allow_floating_models: bool | None = None, retention_days: int | None = None
) -> Organization:
    require(actor, "org.manage")
    org = Organization.objects.select_for_update().get(pk=actor.org.pk)
    before = {
        "allow_floating_models": org.allow_floating_models,
        "retention_days": org.retention_days,
    }
    if allow_floating_models is not None:
        org.allow_floating_models = bool(allow_floating_models)
    if retention_days is not None:
        if retention_days < 1 or retention_days > 3650:
            raise InvalidInput("Retention must be between 1 and 3650 days.", field="retention_days")
        org.retention_days = retention_days
    org.save()
    after = {
        "allow_floating_models": org.allow_floating_models,
        "retention_days": org.retention_days,
    }
    audit_record(
        actor=actor,
        action="organization.settings_changed",
        target=org,
        details={"before": before, "after": after},
    )
    _after_write(lambda: (organization_cache_clear(org.pk), org_memo_forget(org.pk)))
    return org


def _forget_personal_keys(user_id: int, org_id: int) -> None:
    for key_hash in ApiKey.objects.filter(user_id=user_id, organization_id=org_id).values_list(
        "key_hash", flat=True
    ):
        key_cache_forget(key_hash)


def _admin_count(org) -> int:
    return Membership.objects.for_org(org).filter(role=Role.ADMIN).count()


def _lock_members(org) -> None:
    """Serialise membership changes of one organization on its row, so two concurrent
    demotions or removals cannot both pass the last-admin rule (locking the admin rows
    one by one could deadlock two such requests against each other)."""
    Organization.objects.select_for_update().filter(pk=org.pk).values_list("pk").first()


@transaction.atomic
def member_change_role(*, actor: Actor, membership: Membership, role: str) -> Membership:
    require(actor, "member.manage")
    _role(role)
    _lock_members(actor.org)
    membership = (
        Membership.objects.select_for_update()
        .select_related("user")
        .get(pk=membership.pk, organization=actor.org)
    )
    before = membership.role
    if before == role:
        return membership
    if before == Role.ADMIN and _admin_count(actor.org) <= 1:
        raise PolicyViolation(
            "The last admin cannot be demoted: make someone else admin first.", code="last_admin"
        )
    membership.role = role
    membership.save(update_fields=["role"])
    audit_record(
        actor=actor,
        action="member.role_changed",
        target=("auth.user", membership.user_id, membership.user.username),
        details={"before": before, "after": role},
    )
    _after_write(lambda: _forget_personal_keys(membership.user_id, actor.org.pk))
    return membership


@transaction.atomic
def member_remove(*, actor: Actor, membership: Membership) -> None:
    require(actor, "member.manage")
    _lock_members(actor.org)
    membership = (
        Membership.objects.select_for_update()
        .select_related("user")
        .get(pk=membership.pk, organization=actor.org)
    )
    if membership.role == Role.ADMIN and _admin_count(actor.org) <= 1:
        raise PolicyViolation(
            "The last admin cannot be removed: make someone else admin first.", code="last_admin"
        )
    user = membership.user
    for team in Team.objects.for_org(actor.org):
        team.group.user_set.remove(user)
    grants_dropped = guardian.revoke_all_in_org(user, actor.org)
    # A personal key never outlives its user's membership.
    now = timezone.now()
    ApiKey.objects.for_org(actor.org).filter(user=user, revoked_at__isnull=True).update(
        revoked_at=now
    )
    membership.delete()
    audit_record(
        actor=actor,
        action="member.removed",
        target=("auth.user", user.pk, user.username),
        details={"role": membership.role, "object_grants_dropped": grants_dropped},
    )
    _after_write(lambda: _forget_personal_keys(user.pk, actor.org.pk))


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@transaction.atomic
def invitation_create(*, actor: Actor, role: str, email: str = "") -> tuple[Invitation, str]:
    """Returns the invitation and its token (shown once, as a link)."""
    require(actor, "member.manage")
    _role(role)
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        organization=actor.org,
        email=email,
        role=role,
        token_hash=_token_hash(token),
        created_by=actor.user,
        expires_at=timezone.now() + timedelta(days=INVITATION_DAYS),
    )
    audit_record(
        actor=actor,
        action="invitation.created",
        target=("tenancy.invitation", invitation.pk, email or "link"),
        details={"role": role, "email": email},
    )
    return invitation, token


@transaction.atomic
def invitation_revoke(*, actor: Actor, invitation: Invitation) -> None:
    require(actor, "member.manage")
    invitation = Invitation.objects.select_for_update().get(
        pk=invitation.pk, organization=actor.org
    )
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])
    audit_record(
        actor=actor,
        action="invitation.revoked",
        target=("tenancy.invitation", invitation.pk, invitation.email or "link"),
    )


def invitation_by_token(token: str) -> Invitation | None:
    inv = (
        Invitation.objects.select_related("organization")
        .filter(token_hash=_token_hash(token))
        .first()
    )
    if inv is None or inv.accepted_at or inv.revoked_at or inv.expires_at < timezone.now():
        return None
    return inv


@transaction.atomic
def invitation_accept(*, token: str, user) -> Membership:
    inv = invitation_by_token(token)
    if inv is None:
        raise NotFound("This invitation link is invalid, expired or already used.")
    inv = Invitation.objects.select_for_update().get(pk=inv.pk)
    if inv.accepted_at or inv.revoked_at or inv.expires_at < timezone.now():
        raise NotFound("This invitation link is invalid, expired or already used.")
    org = inv.organization
    membership, created = Membership.objects.get_or_create(
        user=user, organization=org, defaults={"role": inv.role}
    )
    inv.accepted_at = timezone.now()
    inv.accepted_by = user
    inv.save(update_fields=["accepted_at", "accepted_by"])
    actor = Actor(org=org, user=user, role=membership.role)
    audit_record(
        actor=actor,
        action="invitation.accepted",
        target=("auth.user", user.pk, user.username),
        details={"role": membership.role, "new_member": created},
    )
    return membership


@transaction.atomic
def invitation_signup(*, token: str, username: str, password: str, email: str = "") -> Membership:
    """A person without an account follows an invitation link: create the account and
    join in one transaction (the link is single-use, so nobody else can use it again)."""
    if invitation_by_token(token) is None:
        raise NotFound("This invitation link is invalid, expired or already used.")
    if User.objects.filter(username__iexact=username).exists():
        raise InvalidInput(f"The username '{username}' is taken.", field="username")
    user = User.objects.create_user(username=username, email=email, password=password)
    return invitation_accept(token=token, user=user)


@transaction.atomic
def team_create(*, actor: Actor, name: str) -> Team:
    require(actor, "team.manage")
    name = (name or "").strip()
    if not name:
        raise InvalidInput("A team needs a name.", field="name")
    if Team.objects.for_org(actor.org).filter(name=name).exists():
        raise InvalidInput(f"A team named '{name}' already exists.", field="name")
    group = Group.objects.create(name=f"org{actor.org.pk}:{name}:{secrets.token_hex(4)}")
    team = Team.objects.create(organization=actor.org, name=name, group=group)
    audit_record(actor=actor, action="team.created", target=team)
    return team


@transaction.atomic
def team_add_member(*, actor: Actor, team: Team, username: str) -> None:
    require(actor, "team.manage", team)
    user = User.objects.filter(username=username, memberships__organization=actor.org).first()
    if user is None:
        raise InvalidInput(f"'{username}' is not a member of this organization.", field="username")
    team.group.user_set.add(user)
    audit_record(
        actor=actor, action="team.member_added", target=team, details={"user": user.username}
    )


@transaction.atomic
def team_remove_member(*, actor: Actor, team: Team, user_id: int) -> None:
    require(actor, "team.manage", team)
    user = team.group.user_set.filter(pk=user_id).first()
    if user is None:
        raise NotFound("That user is not in this team.")
    team.group.user_set.remove(user)
    audit_record(
        actor=actor, action="team.member_removed", target=team, details={"user": user.username}
    )


@transaction.atomic
def team_delete(*, actor: Actor, team: Team) -> None:
    require(actor, "team.manage", team)
    label, pk = team.name, team.pk
    group = team.group
    team.delete()
    group.delete()
    audit_record(actor=actor, action="team.deleted", target=("tenancy.team", pk, label))


def _validate_scopes(scopes) -> list[str]:
    scopes = sorted({s.strip() for s in scopes if s and s.strip()})
    if not scopes:
        raise InvalidInput("Choose at least one scope.", field="scopes")
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise InvalidInput(f"Unknown scope(s): {', '.join(unknown)}.", field="scopes")
    return scopes


@transaction.atomic
def api_key_create(*, actor: Actor, name: str, scopes, user=None) -> tuple[ApiKey, str]:
    """A machine key (no user) or a personal key acting as `user`. Returns the row and the
    key itself, which is never stored and is shown once."""
    name = (name or "").strip()
    if not name:
        raise InvalidInput("A key needs a name.", field="name")
    scopes = _validate_scopes(scopes)
    if user is None:
        require(actor, "api_key.manage")
        human_only = [s for s in scopes if s in HUMAN_ONLY_SCOPES]
        if human_only:
            raise PolicyViolation(
                f"Machine keys may not hold human-only scopes: {', '.join(human_only)}.",
                code="human_only_scope",
            )
    else:
        if not (actor.user is not None and actor.user.pk == user.pk):
            require(actor, "api_key.manage")
        role = (
            Membership.objects.for_org(actor.org)
            .filter(user=user)
            .values_list("role", flat=True)
            .first()
        )
        if role is None:
            raise InvalidInput(
                f"'{user.username}' is not a member of this organization.", field="user"
            )
        beyond = scopes_beyond_role(role, scopes)
        if beyond:
            raise PolicyViolation(
                f"A personal key never exceeds its user's role ({role}); not allowed: {', '.join(beyond)}.",
                code="scope_beyond_role",
            )
    raw, public_id = keys.generate()
    key = ApiKey.objects.create(
        organization=actor.org,
        name=name,
        public_id=public_id,
        key_hash=keys.digest(raw),
        scopes=scopes,
        user=user,
        created_by=actor.user,
    )
    audit_record(
        actor=actor,
        action="api_key.created",
        target=("tenancy.apikey", key.pk, f"{name} ({key.prefix})"),
        details={"scopes": scopes, "personal_for": user.username if user else None},
    )
    return key, raw


@transaction.atomic
def api_key_revoke(*, actor: Actor, key: ApiKey) -> ApiKey:
    key = ApiKey.objects.select_for_update().get(pk=key.pk, organization=actor.org)
    if not (key.user_id and actor.user is not None and key.user_id == actor.user.pk):
        require(actor, "api_key.manage")
    if key.revoked_at:
        return key
    key.revoked_at = timezone.now()
    key.save(update_fields=["revoked_at"])
    audit_record(
        actor=actor,
        action="api_key.revoked",
        target=("tenancy.apikey", key.pk, f"{key.name} ({key.prefix})"),
    )
    _after_write(lambda: key_cache_forget(key.key_hash))
    return key
