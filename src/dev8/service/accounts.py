"""Users, passwords and API tokens of `dev8 server`.

Passwords are hashed with Argon2id. API tokens are 256 random bits: a fast SHA-256 of one is
as safe to store as a slow hash of a password, and lets every request find its token by an
indexed lookup instead of trying a slow hash per stored token.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from dev8.core.clock import utcnow
from dev8.core.dotfiles import validate_dotfiles_repo
from dev8.core.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from dev8.core.users import (
    USER_NAME_PATTERN,
    ApiToken,
    Role,
    User,
    require_enabled,
    validate_password,
    validate_ssh_keys,
    validate_user_name,
)
from dev8.store.store import Store

TOKEN_PREFIX = "dev8_"
MAX_TOKEN_DAYS = 366
# Writing "last used" on every request would turn every read into a write.
TOKEN_TOUCH_INTERVAL = timedelta(minutes=1)
# How long a verified token is trusted without asking the database again. A revocation or a
# role change or a disabling made through this process applies at once; one made through
# another server
# process applies within this time.
TOKEN_CACHE_SECONDS = 5.0
BAD_LOGIN = "wrong user name or password"
_hasher = PasswordHasher()
# Verified against when the user does not exist, so that the answer takes as long.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_password() -> str:
    return secrets.token_urlsafe(18)


class Accounts:
    def __init__(self, store: Store, cache_seconds: float = TOKEN_CACHE_SECONDS) -> None:
        self.store = store
        self.users = store.users
        self._cache_seconds = cache_seconds
        self._verified: dict[str, tuple[float, User, ApiToken]] = {}

    # Users ----------------------------------------------------------------------------
    def create_user(self, name: str, password: str, role: Role = Role.MEMBER) -> User:
        validate_user_name(name)
        validate_password(password)
        user = User(id=uuid.uuid4().hex, name=name, role=role, password_hash=_hasher.hash(password))
        return self.users.add(user, utcnow())

    def ensure_admin(self, name: str, password: str | None) -> tuple[User | None, str | None]:
        """On first start (no users at all), create the admin. Returns the user and the
        password when one was generated (to be shown once), else (None, None)."""
        if self.users.count() > 0:
            return None, None
        generated = None if password else new_password()
        return self.create_user(name, password or generated or "", Role.ADMIN), generated

    def user(self, name: str) -> User:
        user = self.users.by_name(name)
        if user is None:
            raise NotFound(f"no user named {name!r}")
        return user

    def authenticate(self, name: str, password: str) -> User:
        valid = USER_NAME_PATTERN.fullmatch(name) is not None and "\x00" not in password
        user = self.users.by_name(name) if valid else None
        try:
            _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
        except (VerificationError, InvalidHashError, ValueError):
            raise Unauthorized(BAD_LOGIN) from None
        if user is None:
            raise Unauthorized(BAD_LOGIN)
        require_enabled(user)  # only now: the state of an account is no stranger's business
        if _hasher.check_needs_rehash(user.password_hash):
            self.users.update(user.id, utcnow(), password_hash=_hasher.hash(password))
        return user

    def change(
        self,
        user: User,
        *,
        password: str | None = None,
        role: Role | None = None,
        ssh_keys: str | None = None,
        dotfiles_repo: str | None = None,
        disabled: bool | None = None,
        by: User | None = None,
        keep: ApiToken | None = None,
    ) -> User:
        """Changes what is given; ``by`` is who asks (an admin cannot disable themselves).
        Nothing changes if one part is refused.

        A new password revokes every API token and browser session of ``user`` but
        ``keep``, the token the change came with if it is the user's own: a token taken
        with the old password is useless after it, while the CLI or page that made the
        change stays signed in (docs/server.md, "Users, tokens and authorization")."""
        values: dict[str, str | datetime | None] = {}
        if password is not None:
            values["password_hash"] = _hasher.hash(validate_password(password))
        if role is not None and role is not user.role:
            self._refuse_last_admin(user)
            values["role"] = role.value
        if ssh_keys is not None:
            values["ssh_keys"] = validate_ssh_keys(ssh_keys)
        if dotfiles_repo is not None:
            values["dotfiles_repo"] = validate_dotfiles_repo(dotfiles_repo)
        if disabled is not None and disabled is not user.disabled:
            values["disabled_at"] = self._disabling(user, by) if disabled else None
        if values:
            self.users.update(user.id, utcnow(), **values)
            if password is not None:
                kept = keep.id if keep is not None and keep.user_id == user.id else None
                self.users.revoke_all(user.id, utcnow(), keep_id=kept)
            self._forget(user.id)
        return self.users.get(user.id)

    def _disabling(self, user: User, by: User | None) -> datetime:
        """When ``user`` is disabled (now), unless that locks out the admin who asks or the
        last enabled admin."""
        if by is not None and by.id == user.id:
            raise Conflict("you cannot disable your own account; ask another admin")
        self._refuse_last_admin(user)
        return utcnow()

    def _refuse_last_admin(self, user: User) -> None:
        """``Conflict`` if ``user`` is the last enabled admin: demoted, disabled or deleted,
        nobody could manage the server any more."""
        if user.disabled or not user.is_admin:
            return
        if self.users.count(Role.ADMIN, enabled_only=True) <= 1:
            raise Conflict(f"{user.name} is the last enabled admin; make another user admin first")

    def delete_user(self, user: User) -> None:
        self._refuse_last_admin(user)
        if self.store.owns_any(user.name):
            raise Conflict(
                f"{user.name} still has workspaces; purge them first "
                "(their data would have no owner)"
            )
        self.users.delete(user.id)
        self._forget(user.id)

    # Tokens ---------------------------------------------------------------------------
    def issue_token(
        self, user: User, name: str, days: int = 0, *, hours: int = 0
    ) -> tuple[ApiToken, str]:
        """A new token for ``user`` that lives ``days`` plus ``hours`` (a browser session
        lives hours); returns its record and the token, shown only now."""
        lifetime = timedelta(days=days, hours=hours)
        if not timedelta(hours=1) <= lifetime <= timedelta(days=MAX_TOKEN_DAYS):
            raise InvalidInput(
                f"a token lives 1 hour to {MAX_TOKEN_DAYS} days, not {days} days {hours} hours"
            )
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = utcnow()
        token = ApiToken(
            id=uuid.uuid4().hex,
            user_id=user.id,
            name=name,
            prefix=secret[:12],
            created_at=now,
            expires_at=now + lifetime,
        )
        return self.users.add_token(token, hash_token(secret)), secret

    def cached_token(self, secret: str) -> tuple[User, ApiToken] | None:
        """The user and token if ``secret`` was verified moments ago and is still valid;
        None means: verify it (``verify_token``, which asks the database)."""
        found = self._verified.get(hash_token(secret))
        if found is None or time.monotonic() - found[0] > self._cache_seconds:
            return None
        _, user, token = found
        return (user, token) if utcnow() < token.expires_at else None

    def verify_token(self, secret: str, now: datetime | None = None) -> tuple[User, ApiToken]:
        now = now or utcnow()
        digest = hash_token(secret)
        found = self.users.by_token_hash(digest) if secret else None
        if found is None:
            raise Unauthorized("the API token is not valid; log in again with `dev8 login`")
        token, user = found
        if token.revoked_at is not None:
            raise Unauthorized("the API token was revoked; log in again with `dev8 login`")
        if now >= token.expires_at:
            raise Unauthorized("the API token has expired; log in again with `dev8 login`")
        if token.last_used_at is None or now - token.last_used_at > TOKEN_TOUCH_INTERVAL:
            self.users.touch_token(token.id, now)
        if len(self._verified) > 10000:
            self._verified.clear()
        self._verified[digest] = (time.monotonic(), user, token)
        return user, token

    def _forget(self, user_id: str) -> None:
        for digest, (_, user, _) in list(self._verified.items()):
            if user.id == user_id:
                self._verified.pop(digest, None)

    def token_of(self, caller: User, token_id: str) -> ApiToken:
        """A token the caller may see: their own, or anyone's for an admin."""
        token = self.users.token(token_id)
        if token is None or (token.user_id != caller.id and not caller.is_admin):
            raise NotFound(f"no token {token_id}")
        return token

    def revoke(self, token: ApiToken) -> None:
        self.users.revoke_token(token.id, utcnow())
        self._forget(token.user_id)


def require_admin(user: User) -> User:
    if not user.is_admin:
        raise Forbidden("only an admin may do this")
    return user
