"""Who may sign in through an identity provider, and as which user: the allow-list (email
domains, named users, GitHub organisations; empty lets nobody in), the admin list, and the
member a first sign-in creates. Users are found by issuer and subject, never by email."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from dev8.core.clock import utcnow
from dev8.core.errors import AlreadyExists, Forbidden, NotFound
from dev8.core.users import (
    RESERVED_USER_NAMES,
    USER_NAME_PATTERN,
    Role,
    User,
    require_enabled,
)
from dev8.server.settings import Settings
from dev8.server.web.sso.providers import FoundIdentity
from dev8.service.accounts import Accounts
from dev8.store.identities import Identity

NOT_ALLOWED = "this account may not sign in to dev8; ask an admin to add you to the allow-list"
REMOVED = "this account was removed from dev8; ask an admin"
MAX_NAME = 63
MAX_NAME_TRIES = 50


def _items(text: str) -> frozenset[str]:
    return frozenset(item.strip().lower() for item in text.split(",") if item.strip())


@dataclass(frozen=True)
class Policy:
    domains: frozenset[str]
    users: frozenset[str]  # verified email addresses and GitHub logins
    orgs: frozenset[str]
    admins: frozenset[str]

    @classmethod
    def of(cls, settings: Settings) -> Policy:
        return cls(
            domains=frozenset(d.lstrip("@") for d in _items(settings.sso_allowed_domains)),
            users=_items(settings.sso_allowed_users),
            orgs=_items(settings.sso_allowed_github_orgs),
            admins=_items(settings.sso_admins),
        )

    def is_admin(self, found: FoundIdentity) -> bool:
        return bool(_names(found) & self.admins)

    def admits(self, found: FoundIdentity) -> bool:
        domain = found.email.rpartition("@")[2] if found.email else ""
        return (
            self.is_admin(found)
            or bool(_names(found) & self.users)
            or (bool(domain) and domain in self.domains)
            or bool(found.orgs & self.orgs)
        )


def _names(found: FoundIdentity) -> set[str]:
    """What list entries may name: the verified email, the GitHub login (GitHub only:
    another provider's user names are theirs to choose)."""
    return {name for name in (found.email, found.github_login) if name}


def user_name_base(hint: str) -> str:
    """``hint`` (a preferred user name, a login, an email's local part) made a valid dev8
    user name: lowercase, other characters as '-', trimmed to 63; "user" if nothing is
    left or the name is reserved."""
    name = re.sub(r"[^a-z0-9._-]+", "-", hint.lower())[:MAX_NAME]
    name = re.sub(r"^[^a-z0-9]+|[^a-z0-9]+$", "", name)
    if not USER_NAME_PATTERN.fullmatch(name) or name in RESERVED_USER_NAMES:
        return "user"
    return name


def candidate_names(base: str) -> list[str]:
    """``base``, then ``base-2``, ``base-3``... each within 63 characters."""
    names = [base]
    for n in range(2, MAX_NAME_TRIES + 1):
        suffix = f"-{n}"
        names.append(base[: MAX_NAME - len(suffix)].rstrip("._-") + suffix)
    return names


def sign_in(accounts: Accounts, policy: Policy, found: FoundIdentity) -> User:
    """The user ``found`` signs in as, creating a member at the first sign-in;
    ``Forbidden`` outside the allow-list or for a deleted user, ``Unauthorized`` for a
    disabled one (nothing is created or changed)."""
    if not policy.admits(found):
        raise Forbidden(NOT_ALLOWED)
    known = accounts.store.identities.get(found.issuer, found.subject)
    user = _existing(accounts, known) if known else _new_member(accounts, policy, found)
    if policy.is_admin(found) and not user.is_admin:
        user = accounts.change(user, role=Role.ADMIN)
    return user


def _existing(accounts: Accounts, known: Identity) -> User:
    if known.user_id is None:
        raise Forbidden(REMOVED)
    try:
        user = accounts.users.get(known.user_id)
    except NotFound:  # deleted this very moment
        raise Forbidden(REMOVED) from None
    return require_enabled(user)


def _new_member(accounts: Accounts, policy: Policy, found: FoundIdentity) -> User:
    identities = accounts.store.identities
    identity = Identity(found.issuer, found.subject, found.email)
    role = Role.ADMIN if policy.is_admin(found) else Role.MEMBER
    for name in candidate_names(user_name_base(found.name_hint)):
        if accounts.users.by_name(name) is not None:
            continue
        user = User(id=uuid.uuid4().hex, name=name, role=role)  # no password: SSO only
        try:
            return identities.add_member(user, identity, utcnow())
        except AlreadyExists:
            known = identities.get(found.issuer, found.subject)
            if known is not None:  # the same person, signing in twice at once
                return _existing(accounts, known)
    raise Forbidden(f"no free user name like {found.name_hint[:40]!r}; ask an admin")
