"""Who is acting: a person (session or personal key) or a machine key, in one organization."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class KeyInfo:
    """What a request needs to know of its API key, cacheable without the ORM."""

    id: int
    organization_id: int
    name: str
    public_id: str
    scopes: tuple[str, ...]
    user_id: int | None
    created_by_id: int | None
    revoked: bool = False

    @property
    def prefix(self) -> str:
        return f"llmops_{self.public_id}"

    @property
    def is_machine(self) -> bool:
        return self.user_id is None


@dataclass(frozen=True)
class Actor:
    org: Any  # tenancy.Organization
    user: Any = None  # auth.User for a person, None for a machine key or the system
    role: str | None = None
    key: KeyInfo | None = None
    ip: str | None = None
    system: bool = False
    _cache: dict = field(default_factory=dict, compare=False, repr=False, hash=False)

    @property
    def is_machine(self) -> bool:
        return self.key is not None and self.key.is_machine

    @property
    def is_human(self) -> bool:
        return self.user is not None and not self.system

    @property
    def user_id(self) -> int | None:
        return self.user.pk if self.user is not None else None

    @property
    def label(self) -> str:
        if self.system:
            return "system"
        if self.is_machine:
            return f"key {self.key.name} ({self.key.prefix})"
        name = self.user.get_username()
        return f"{name} via key {self.key.prefix}" if self.key else name

    @property
    def kind(self) -> str:
        if self.system:
            return "system"
        return "api_key" if self.is_machine else "user"

    @property
    def ref_id(self) -> str:
        if self.system:
            return ""
        return str(self.key.id) if self.is_machine else str(self.user.pk)

    def author_user_ids(self) -> set[int]:
        """The people a proposal made by this actor counts as authored by (four eyes):
        the person, or for a machine key the person who created the key."""
        if self.is_machine:
            return {self.key.created_by_id} if self.key.created_by_id else set()
        return {self.user.pk} if self.user is not None else set()

    @classmethod
    def system_for(cls, org) -> Actor:
        return cls(org=org, system=True)
