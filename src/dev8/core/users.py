"""Users and API tokens of `dev8 server`, as pure records. Local mode has no users."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from dev8.core.errors import InvalidInput

USER_NAME_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$")
# Names the server writes as the actor of operations it starts itself.
RESERVED_USER_NAMES = frozenset({"reconciler", "idle-timeout", "system", "anonymous"})
MIN_PASSWORD_LENGTH = 10


class Role(str, Enum):
    ADMIN = "admin"
    MEMBER = "member"


@dataclass
class User:
    id: str
    name: str
    role: Role
    password_hash: str = field(repr=False, default="")
    ssh_keys: str = ""
    created_at: datetime | None = None

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


@dataclass
class ApiToken:
    """A token's record; the token itself is shown once and only its hash is stored."""

    id: str
    user_id: str
    name: str
    prefix: str  # the first characters, so that a user can tell their tokens apart
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    def usable_at(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at


def validate_user_name(name: str) -> str:
    if not USER_NAME_PATTERN.match(name or ""):
        raise InvalidInput(
            f"invalid user name {name[:40]!r}: use 1 to 63 lowercase letters, digits, '.', '_' "
            "or '-', starting and ending with a letter or digit"
        )
    if name in RESERVED_USER_NAMES:
        raise InvalidInput(f"user name {name!r} is reserved; choose another")
    return name


def validate_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            f"the password is too short; use at least {MIN_PASSWORD_LENGTH} characters"
        )
    if len(password) > 1024:
        raise InvalidInput("the password is longer than 1024 characters")
    if "\x00" in password:
        raise InvalidInput("the password contains a NUL character")
    return password
