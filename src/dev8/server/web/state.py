"""What the browser's door keeps in the server process: outstanding tickets, the app-cookie
signer and the sessions app hosts have checked lately (the sign-in backoff is
``dev8.server.ratelimit``'s)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from starlette.requests import HTTPConnection

from dev8.core.clock import utcnow
from dev8.core.errors import NotFound
from dev8.core.users import User
from dev8.server.context import ServerContext
from dev8.server.settings import Settings, _development_key
from dev8.server.web.tickets import AppCookies, Tickets, derive_key
from dev8.service.accounts import TOKEN_CACHE_SECONDS


class SessionsById:
    """Whether a browser session (by its token's id, as an app cookie names it) is still
    valid, asking the database at most every few seconds per session; a logout through this
    process applies at once (``forget``)."""

    def __init__(self, context: ServerContext, seconds: float = TOKEN_CACHE_SECONDS) -> None:
        self._context = context
        self._seconds = seconds
        self._checked: dict[str, tuple[float, User | None]] = {}
        self._lock = threading.Lock()

    def cached(self, token_id: str) -> tuple[bool, User | None]:
        """(known, user): ``known`` False means: ask ``check`` (in a worker thread)."""
        with self._lock:
            found = self._checked.get(token_id)
        if found is None or time.monotonic() - found[0] > self._seconds:
            return False, None
        return True, found[1]

    def check(self, token_id: str) -> User | None:
        users = self._context.store.users
        token = users.token(token_id)
        valid = token is not None and token.revoked_at is None and utcnow() < token.expires_at
        try:
            user = users.get(token.user_id) if valid and token else None
        except NotFound:  # deleted a moment ago (its tokens with it)
            user = None
        if user is not None and user.disabled:
            user = None
        with self._lock:
            if len(self._checked) > 10_000:
                self._checked.clear()
            self._checked[token_id] = (time.monotonic(), user)
        return user

    def forget(self, token_id: str) -> None:
        with self._lock:
            self._checked.pop(token_id, None)


@dataclass
class WebState:
    context: ServerContext
    tickets: Tickets = field(default_factory=Tickets)
    app_cookies: AppCookies = field(init=False)
    sessions: SessionsById = field(init=False)

    def __post_init__(self) -> None:
        self.app_cookies = AppCookies(derive_key(signing_secret(self.context.settings)))
        self.sessions = SessionsById(self.context)


def signing_secret(settings: Settings) -> str:
    """The key that seals secrets now (the first of several), or development mode's."""
    keys = settings.secret_key.get_secret_value() if settings.secret_key else ""
    return keys.split(",")[0].strip() or _development_key(settings.directory())


def web_state(connection: HTTPConnection) -> WebState:
    return connection.app.state.web
