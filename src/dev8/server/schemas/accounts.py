"""Users, logging in and API tokens."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from dev8.core.dotfiles import MAX_URL_LENGTH
from dev8.core.users import Role
from dev8.server.schemas.base import Input, Public


class UserCreate(Input):
    name: str = Field(min_length=1, max_length=63)
    password: str = Field(min_length=1, max_length=1024)
    role: Role = Role.MEMBER


class UserUpdate(Input):
    password: str | None = Field(None, min_length=1, max_length=1024)
    current_password: str | None = Field(
        None, max_length=1024, description="Needed to change your own password."
    )
    role: Role | None = None
    ssh_keys: str | None = Field(
        None, max_length=65536, description="Public keys, authorized_keys format."
    )
    dotfiles_repo: str | None = Field(
        None,
        max_length=MAX_URL_LENGTH,
        description="Cloned into each new workspace's home at its first start, its install "
        'script run once; "" for none.',
    )
    disabled: bool | None = Field(
        None,
        description="Admins: true refuses the user's tokens, sessions and sign-ins and stops "
        "their running workspaces; false lets them in again (it starts nothing).",
    )


class UserPublic(Public):
    id: str
    name: str
    role: Role
    ssh_keys: str
    dotfiles_repo: str
    created_at: datetime | None
    disabled: bool
    disabled_at: datetime | None


class LoginRequest(Input):
    username: str = Field(min_length=1, max_length=63)
    password: str = Field(min_length=1, max_length=1024)
    token_name: str = Field("cli", min_length=1, max_length=100)
    expires_in_days: int | None = Field(None, ge=1, le=366)


class TokenCreate(Input):
    name: str = Field(min_length=1, max_length=100)
    expires_in_days: int | None = Field(None, ge=1, le=366)


class TokenPublic(Public):
    id: str
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenPublic):
    token: str = Field(description="Shown once; only its hash is kept.")
    user: str
