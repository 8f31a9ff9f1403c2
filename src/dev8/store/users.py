"""Users and API tokens (server mode). Tokens are stored as hashes only."""

from __future__ import annotations

import builtins
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from dev8.core.errors import AlreadyExists, NotFound
from dev8.core.users import ApiToken, Role, User
from dev8.store.models import ApiTokenRow, UserRow
from dev8.store.tables import changed


def _to_user(row: UserRow) -> User:
    return User(
        id=row.id,
        name=row.name,
        role=Role(row.role),
        password_hash=row.password_hash,
        ssh_keys=row.ssh_keys,
        dotfiles_repo=row.dotfiles_repo,
        created_at=row.created_at,
        disabled_at=row.disabled_at,
    )


def _to_token(row: ApiTokenRow) -> ApiToken:
    return ApiToken(
        id=row.id,
        user_id=row.user_id,
        name=row.name,
        prefix=row.prefix,
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


class UserStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    # Users ------------------------------------------------------------------------------
    def add(self, user: User, now: datetime) -> User:
        row = UserRow(
            id=user.id,
            name=user.name,
            role=user.role.value,
            password_hash=user.password_hash,
            ssh_keys=user.ssh_keys,
            dotfiles_repo=user.dotfiles_repo,
            created_at=now,
            updated_at=now,
        )
        try:
            with self._sessions() as session, session.begin():
                session.add(row)
        except IntegrityError as exc:
            raise AlreadyExists(f"a user named {user.name!r} already exists") from exc
        user.created_at = now
        return user

    def get(self, user_id: str) -> User:
        with self._sessions() as session:
            row = session.get(UserRow, user_id)
            if row is None:
                raise NotFound(f"no user with id {user_id}")
            return _to_user(row)

    def by_name(self, name: str) -> User | None:
        with self._sessions() as session:
            row = session.scalars(select(UserRow).where(UserRow.name == name)).first()
            return _to_user(row) if row else None

    def list(self) -> list[User]:
        with self._sessions() as session:
            return [
                _to_user(row) for row in session.scalars(select(UserRow).order_by(UserRow.name))
            ]

    def count(self, role: Role | None = None, *, enabled_only: bool = False) -> int:
        query = select(func.count()).select_from(UserRow)
        if role is not None:
            query = query.where(UserRow.role == role.value)
        if enabled_only:
            query = query.where(UserRow.disabled_at.is_(None))
        with self._sessions() as session:
            return session.scalar(query) or 0

    def update(self, user_id: str, now: datetime, **values: str | datetime | None) -> None:
        statement = update(UserRow).where(UserRow.id == user_id).values(**values, updated_at=now)
        with self._sessions() as session, session.begin():
            if changed(session, statement) == 0:
                raise NotFound(f"no user with id {user_id}")

    def delete(self, user_id: str) -> None:
        with self._sessions() as session, session.begin():
            row = session.get(UserRow, user_id)
            if row is not None:
                session.delete(row)

    # Tokens -----------------------------------------------------------------------------
    def add_token(self, token: ApiToken, token_hash: str) -> ApiToken:
        row = ApiTokenRow(
            id=token.id,
            user_id=token.user_id,
            name=token.name,
            prefix=token.prefix,
            token_hash=token_hash,
            created_at=token.created_at,
            expires_at=token.expires_at,
        )
        with self._sessions() as session, session.begin():
            session.add(row)
        return token

    def by_token_hash(self, token_hash: str) -> tuple[ApiToken, User] | None:
        query = (
            select(ApiTokenRow, UserRow)
            .join(UserRow, UserRow.id == ApiTokenRow.user_id)
            .where(ApiTokenRow.token_hash == token_hash)
        )
        with self._sessions() as session:
            found = session.execute(query).first()
            return (_to_token(found[0]), _to_user(found[1])) if found else None

    def token(self, token_id: str) -> ApiToken | None:
        with self._sessions() as session:
            row = session.get(ApiTokenRow, token_id)
            return _to_token(row) if row else None

    def tokens(self, user_id: str) -> builtins.list[ApiToken]:
        query = (
            select(ApiTokenRow)
            .where(ApiTokenRow.user_id == user_id)
            .order_by(ApiTokenRow.created_at.desc())
        )
        with self._sessions() as session:
            return [_to_token(row) for row in session.scalars(query)]

    def revoke_token(self, token_id: str, now: datetime) -> None:
        with self._sessions() as session, session.begin():
            session.execute(
                update(ApiTokenRow)
                .where(ApiTokenRow.id == token_id, ApiTokenRow.revoked_at.is_(None))
                .values(revoked_at=now)
            )

    def revoke_all(self, user_id: str, now: datetime, *, keep_id: str | None = None) -> None:
        """Revoke every live token of ``user_id`` but ``keep_id``."""
        statement = update(ApiTokenRow).where(
            ApiTokenRow.user_id == user_id,
            ApiTokenRow.revoked_at.is_(None),
            ApiTokenRow.id != (keep_id or ""),
        )
        with self._sessions() as session, session.begin():
            session.execute(statement.values(revoked_at=now))

    def touch_token(self, token_id: str, now: datetime) -> None:
        with self._sessions() as session, session.begin():
            session.execute(
                update(ApiTokenRow).where(ApiTokenRow.id == token_id).values(last_used_at=now)
            )
