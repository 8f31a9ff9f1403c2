"""Users and API tokens of `dev8 server`, as pure records. Local mode has no users."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from dev8.core.errors import InvalidInput, Unauthorized

USER_NAME_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$")
# Names the server writes as the actor of operations it starts itself.
RESERVED_USER_NAMES = frozenset({"reconciler", "idle-timeout", "system", "anonymous"})
MIN_PASSWORD_LENGTH = 10
ACCOUNT_DISABLED = "this account is disabled; ask an admin to enable it"


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
    dotfiles_repo: str = ""  # cloned into every workspace that does not name its own
    created_at: datetime | None = None
    disabled_at: datetime | None = None  # when an admin disabled the account; None: enabled

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None


def require_enabled(user: User) -> User:
    """``user``, unless an admin disabled them: then ``Unauthorized``, whatever credential
    they came with (token, session, password, identity provider)."""
    if user.disabled:
        raise Unauthorized(ACCOUNT_DISABLED)
    return user


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


def validate_user_name(name: str) -> str:
    if not USER_NAME_PATTERN.fullmatch(name or ""):
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


SSH_KEY_TYPES = frozenset(
    {
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    }
)
MAX_SSH_KEYS = 50


def validate_ssh_keys(text: str) -> str:
    """Public keys in authorized_keys format, one per line; returns them normalised (blank
    lines and comments dropped, duplicates once)."""
    keys: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) < 2 or parts[0] not in SSH_KEY_TYPES or not _is_base64(parts[1]):
            raise InvalidInput(
                f"line {number} is not an SSH public key; expected e.g. 'ssh-ed25519 AAAA... "
                "you@host'"
            )
        if line not in keys:
            keys.append(line)
    if len(keys) > MAX_SSH_KEYS:
        raise InvalidInput(f"{len(keys)} SSH keys; at most {MAX_SSH_KEYS} are accepted")
    return "\n".join(keys) + ("\n" if keys else "")


def _is_base64(text: str) -> bool:
    import base64
    import binascii

    try:
        return len(base64.b64decode(text, validate=True)) > 0
    except (binascii.Error, ValueError):
        return False
