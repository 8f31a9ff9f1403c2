"""How a signed-in browser gets onto an app host without a cookie for the parent domain:
the main host gives a one-time ticket bound to that host (``Tickets``), the app host redeems
it and sets its own host-only cookie, an HMAC-signed statement (``AppCookies``)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

TICKET_SECONDS = 60.0
MAX_TICKETS = 10_000
_PURPOSE = b"dev8 app-host cookie v1"


@dataclass(frozen=True)
class Ticket:
    host: str  # the app host's name, lowercased, without a port
    token_id: str  # the browser session's API token
    expires: float  # time.monotonic()


class Tickets:
    """One-time tickets kept in this process's memory: 60 s, bound to a host, at most
    ``limit`` outstanding (the oldest are dropped first)."""

    def __init__(self, seconds: float = TICKET_SECONDS, limit: int = MAX_TICKETS) -> None:
        self._seconds = seconds
        self._limit = limit
        self._tickets: OrderedDict[str, Ticket] = OrderedDict()
        self._lock = threading.Lock()

    def issue(self, host: str, token_id: str) -> str:
        ticket = secrets.token_urlsafe(32)
        with self._lock:
            self._tickets[ticket] = Ticket(host, token_id, time.monotonic() + self._seconds)
            while len(self._tickets) > self._limit:
                self._tickets.popitem(last=False)
        return ticket

    def redeem(self, ticket: str, host: str) -> str | None:
        """The session token id of ``ticket`` if it is unused, unexpired and for ``host``;
        a ticket is gone once tried, whatever the answer."""
        with self._lock:
            found = self._tickets.pop(ticket, None)
        if found is None or found.host != host or time.monotonic() > found.expires:
            return None
        return found.token_id


def derive_key(secret_key: str) -> bytes:
    """A key for app-host cookies only, derived from the server's secret key (never the
    secret key itself, which seals workspace secrets)."""
    return hmac.new(secret_key.encode(), _PURPOSE, hashlib.sha256).digest()


@dataclass(frozen=True)
class AppClaim:
    token_id: str
    host: str
    expires: int  # Unix time


class AppCookies:
    """``dev8_app`` values: ``token_id.host.expiry`` and its HMAC-SHA256, base64url."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def sign(self, claim: AppClaim) -> str:
        statement = f"{claim.token_id}|{claim.host}|{claim.expires}".encode()
        mac = hmac.new(self._key, statement, hashlib.sha256).digest()
        return _b64(statement) + "." + _b64(mac)

    def verify(self, value: str, host: str, now: float | None = None) -> AppClaim | None:
        """The claim of ``value`` if its signature is good, it names ``host`` and it has
        not expired."""
        encoded, _, encoded_mac = value.partition(".")
        try:
            statement, mac = _unb64(encoded), _unb64(encoded_mac)
        except (binascii.Error, ValueError):
            return None
        expected = hmac.new(self._key, statement, hashlib.sha256).digest()
        if not hmac.compare_digest(mac, expected):
            return None
        token_id, claimed_host, expires = statement.decode().split("|")
        if claimed_host != host or int(expires) <= (now or time.time()):
            return None
        return AppClaim(token_id, claimed_host, int(expires))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    if len(text) > 512:
        raise ValueError("too long")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
