"""Backoff for password checks: every sign-in (the API's token login, the dashboard's form)
and every "current password" check goes through ``checked_password``.

A check costs a 64 MiB Argon2 verification and is one guess at a password, so failures are
bounded per account (by name, whether it exists or not) and per client address (an IPv6
client by its /64, which one host usually holds whole). After ``per_account`` or
``per_address`` failures within ``window_s``, that account or address is locked for
``window_s``, doubled at each lock that follows (up to an hour): further attempts get 429
with ``Retry-After`` before any hash is computed, and no audit row (the failure that started
the lock has its own, and a log line). Checks in progress count against the allowance, so
many at once are no way round it. A success unlocks the account, never the address.

State is per server process, in a map of bounded size (the records least recently touched,
unlocked ones first, are forgotten): N processes behind one balancer allow N times the
guesses, and a restart forgets the locks.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice

from starlette.requests import HTTPConnection

from dev8.core.errors import TooManyRequests, Unauthorized
from dev8.core.users import User
from dev8.server.settings import Settings
from dev8.service.accounts import Accounts

log = logging.getLogger("dev8.server")
MAX_LOCK_S = 3600.0
MAX_KEYS = 20_000
# How many of the oldest records eviction looks through for one that holds no lock.
EVICTION_SCAN = 64
TOO_MANY = "too many failed sign-ins {who}; try again in {seconds} s"
WHO = {"account": "for this account", "address": "from this address"}
Key = tuple[str, str]


@dataclass
class _Record:
    failures: deque[float] = field(default_factory=deque)
    in_flight: int = 0
    locked_until: float = 0.0
    locks: int = 0

    def forget_before(self, moment: float) -> None:
        while self.failures and self.failures[0] < moment:
            self.failures.popleft()

    def idle(self, now: float) -> bool:
        return self.in_flight == 0 and self.locked_until <= now


@dataclass(frozen=True)
class Limits:
    per_account: int = 5
    per_address: int = 20
    window_s: float = 300.0
    max_keys: int = MAX_KEYS

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(
            settings.login_failures_per_account,
            settings.login_failures_per_address,
            float(settings.login_window_s),
        )


class SignInThrottle:
    """The failures and locks of one server process, safe to use from worker threads."""

    def __init__(
        self, limits: Limits | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits or Limits()
        self._clock = clock
        self._records: OrderedDict[Key, _Record] = OrderedDict()
        self._lock = threading.Lock()

    @contextmanager
    def attempt(self, account: str, address: str) -> Iterator[None]:
        """Around one password check: ``TooManyRequests`` (with ``retry_after``) instead of
        the check when the account or the address is locked or has its allowance in use;
        an ``Unauthorized`` from the check counts as a failure, and the one that starts a
        lock says so."""
        keys = self._keys(account, address)
        self._begin(keys)
        outcome = "abandoned"  # neither: e.g. the database did not answer
        try:
            yield
            outcome = "succeeded"
        except Unauthorized as refused:
            outcome = "failed"
            locks = self._end(keys, outcome)
            if not locks:
                raise
            for (what, who), seconds in locks.items():
                log.warning("failed sign-ins: %s %r locked for %d s", what, who, seconds)
            paused = " and ".join(f"{WHO[what]} wait {s} s" for (what, _), s in locks.items())
            raise Unauthorized(f"{refused.message}; too many failures: sign-ins {paused}") from None
        finally:
            if outcome != "failed":
                self._end(keys, outcome)

    def _keys(self, account: str, address: str) -> dict[Key, int]:
        return {
            ("account", account[:255]): self.limits.per_account,
            ("address", address_group(address)): self.limits.per_address,
        }

    def _begin(self, keys: dict[Key, int]) -> None:
        now = self._clock()
        with self._lock:
            for key, limit in keys.items():
                wait = self._wait(key, limit, now)
                if wait > 0:
                    seconds = math.ceil(wait)
                    raise TooManyRequests(
                        TOO_MANY.format(who=WHO[key[0]], seconds=seconds), retry_after=seconds
                    )
            for key in keys:
                self._touch(key, now).in_flight += 1

    def _wait(self, key: Key, limit: int, now: float) -> float:
        """Seconds until ``key`` may try again; 0 now."""
        record = self._records.get(key)
        if record is None:
            return 0.0
        if record.locked_until > now:
            return record.locked_until - now
        record.forget_before(now - self.limits.window_s)
        if len(record.failures) + record.in_flight < limit:
            return 0.0
        # Only checks in progress can fill the allowance (failures alone lock it): they end
        # within a second or so.
        return 1.0

    def _end(self, keys: dict[Key, int], outcome: str) -> dict[Key, int]:
        """Records ``outcome``; the locks it started, in seconds."""
        now = self._clock()
        locks = {}
        with self._lock:
            for key, limit in keys.items():
                record = self._touch(key, now)
                record.in_flight = max(0, record.in_flight - 1)
                if outcome == "succeeded" and key[0] == "account":
                    del self._records[key]
                elif outcome == "failed" and (seconds := self._fail(record, limit, now)):
                    locks[key] = seconds
        return locks

    def _fail(self, record: _Record, limit: int, now: float) -> int:
        """Counts a failure; the seconds of the lock it starts, or 0."""
        window = self.limits.window_s
        record.forget_before(now - window)
        record.failures.append(now)
        if len(record.failures) < limit:
            return 0
        if now - record.locked_until > MAX_LOCK_S:  # quiet long enough: start over
            record.locks = 0
        record.locks += 1
        seconds = min(window * 2 ** (record.locks - 1), MAX_LOCK_S)
        record.locked_until = now + seconds
        record.failures.clear()
        return math.ceil(seconds)

    def _touch(self, key: Key, now: float) -> _Record:
        record = self._records.get(key)
        if record is None:
            self._evict(now)
            record = self._records[key] = _Record()
        self._records.move_to_end(key)
        return record

    def _evict(self, now: float) -> None:
        """Room for one more record."""
        while len(self._records) >= self.limits.max_keys:
            oldest = islice(self._records.items(), EVICTION_SCAN)
            idle = next((key for key, record in oldest if record.idle(now)), None)
            if idle is None:
                self._records.popitem(last=False)
            else:
                del self._records[idle]


def address_group(address: str) -> str:
    """What one client is counted as: its IPv4 address, or its IPv6 /64."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:100]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def client_address(connection: HTTPConnection) -> str:
    """The client's address: the direct peer, or what a trusted proxy says it is."""
    return connection.client.host if connection.client else "unknown"


def checked_password(
    connection: HTTPConnection, accounts: Accounts, name: str, password: str
) -> User:
    """``accounts.authenticate`` behind this process's backoff (call it in a worker
    thread): ``TooManyRequests`` without a check while ``name`` or the client is locked."""
    throttle: SignInThrottle = connection.app.state.sign_ins  # one per app (dev8.server.app)
    try:
        with throttle.attempt(name, client_address(connection)):
            return accounts.authenticate(name, password)
    except TooManyRequests:
        connection.state.throttled = True  # no audit row for it (dev8.server.recorder)
        raise
