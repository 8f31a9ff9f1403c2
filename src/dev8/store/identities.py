"""Identities at identity providers (single sign-on): each names one user by the provider's
issuer and its subject for them, never by email alone."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from dev8.core.errors import AlreadyExists
from dev8.core.users import User
from dev8.store.models import IdentityRow, UserRow


@dataclass(frozen=True)
class Identity:
    issuer: str
    subject: str
    email: str = ""
    user_id: str | None = None  # None: its user was deleted
    created_at: datetime | None = None


def _to_identity(row: IdentityRow) -> Identity:
    return Identity(row.issuer, row.subject, row.email, row.user_id, row.created_at)


class IdentityStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def get(self, issuer: str, subject: str) -> Identity | None:
        query = select(IdentityRow).where(
            IdentityRow.issuer == issuer, IdentityRow.subject == subject
        )
        with self._sessions() as session:
            row = session.scalars(query).first()
            return _to_identity(row) if row else None

    def of_user(self, user_id: str) -> list[Identity]:
        query = select(IdentityRow).where(IdentityRow.user_id == user_id)
        with self._sessions() as session:
            return [_to_identity(row) for row in session.scalars(query)]

    def add_member(self, user: User, identity: Identity, now: datetime) -> User:
        """``user`` and its first identity, together or not at all. ``AlreadyExists`` if
        the user name is taken or the identity is known already (a sign-in at the same
        moment): the caller looks again."""
        user_row = UserRow(
            id=user.id,
            name=user.name,
            role=user.role.value,
            password_hash=user.password_hash,
            ssh_keys=user.ssh_keys,
            created_at=now,
            updated_at=now,
        )
        identity_row = IdentityRow(
            id=uuid.uuid4().hex,
            user_id=user.id,
            issuer=identity.issuer,
            subject=identity.subject,
            email=identity.email,
            created_at=now,
        )
        try:
            with self._sessions() as session, session.begin():
                session.add(user_row)
                session.flush()  # the user first: the identity refers to it
                session.add(identity_row)
        except IntegrityError as exc:
            raise AlreadyExists(f"a user named {user.name!r} or this identity exists") from exc
        user.created_at = now
        return user
