"""Attack: guessing passwords as fast as the server answers. Before the fix, 40 wrong admin
passwords in a row were each checked (a 64 MiB Argon2 verification and an audit row every
time) and the right one then worked. Now every password check of the server (the API's
token login, the dashboard's sign-in form, the current password a change of one's own
password needs) is behind a backoff per account and per client address: after
``DEV8_LOGIN_FAILURES_PER_ACCOUNT`` (5) or ``..._PER_ADDRESS`` (20) failures within
``DEV8_LOGIN_WINDOW_S``, further attempts get 429 with Retry-After, before any hash is
computed and without an audit row. The state is per server process.

Stand-ins (no engine): the real app under uvicorn with the fake provider and agent of
``tests.fakes``; Argon2 at its lowest cost (only the stored parameters differ) and counted.
Other client addresses are a trusted proxy's ``X-Forwarded-For`` (``DEV8_TRUSTED_PROXIES``
lists the test's loopback). The throttle's clock is a fake one where time must pass.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import httpx
import pytest
from argon2 import PasswordHasher

from dev8.core.errors import TooManyRequests, Unauthorized
from dev8.server.ratelimit import Limits, SignInThrottle, address_group
from dev8.service import accounts
from tests.integration.server.live import ADMIN_PASSWORD, Api, serving

LOGIN = "/api/v1/auth/login"


class CountingHasher(PasswordHasher):
    """Argon2id at its lowest cost, counting the verifications (the costly part)."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.verified = 0
        self._count_lock = threading.Lock()

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        with self._count_lock:
            self.verified += 1
        return super().verify(hash, password)


@pytest.fixture
def hasher(monkeypatch: pytest.MonkeyPatch) -> CountingHasher:
    counting = CountingHasher()
    monkeypatch.setattr(accounts, "_hasher", counting)
    monkeypatch.setattr(accounts, "_DUMMY_HASH", counting.hash("not anyone's password"))
    return counting


@pytest.fixture
def api(tmp_path: Path, database_url: str, hasher: CountingHasher) -> Iterator[Api]:
    with serving(tmp_path, database_url, trusted_proxies="127.0.0.1") as api:
        yield api


def login(api: Api, name: str, password: str, address: str = "") -> httpx.Response:
    headers = {"X-Forwarded-For": address} if address else {}
    body = {"username": name, "password": password}
    return api.anonymous().post(LOGIN, json=body, headers=headers)


def audited_logins(api: Api) -> list[int]:
    entries = api.context.store.audit.list(limit=1000)
    return [entry.status for entry in entries if entry.path == LOGIN]


def test_forty_wrong_admin_passwords_lock_the_account_before_any_more_checks(
    api: Api, hasher: CountingHasher
):
    answers = [login(api, "admin", f"guess-{n}").status_code for n in range(40)]
    right = login(api, "admin", ADMIN_PASSWORD)

    assert answers == [401] * 5 + [429] * 35
    assert right.status_code == 429, right.text  # locked: the right password waits too
    assert right.json()["error"] == "too_many_requests"
    assert "for this account" in right.json()["message"]
    assert 0 < int(right.headers["Retry-After"]) <= 300
    assert hasher.verified == 5
    assert audited_logins(api) == [401] * 5  # the refused 36 left no row
    # The failure that started the lock said so, in its answer and its audit row.
    rows = api.context.store.audit.list(limit=1000)
    assert any("sign-ins for this account wait 300 s" in entry.message for entry in rows)


def test_the_lock_holds_from_every_address_and_spares_other_accounts(api: Api):
    api.member("alice")
    for n in range(5):
        assert login(api, "admin", "wrong", address=f"198.51.100.{n}").status_code == 401
    assert login(api, "admin", ADMIN_PASSWORD, address="203.0.113.7").status_code == 429
    assert login(api, "alice", "alice-password-1234").status_code == 201


def test_one_address_spraying_many_accounts_is_locked(api: Api, hasher: CountingHasher):
    answers = [login(api, f"user{n}", "Winter2026!", "192.0.2.9").status_code for n in range(30)]

    assert answers == [401] * 20 + [429] * 10
    assert hasher.verified == 20
    refused = login(api, "admin", ADMIN_PASSWORD, "192.0.2.9")
    assert refused.status_code == 429 and "from this address" in refused.json()["message"]
    assert login(api, "admin", ADMIN_PASSWORD, "192.0.2.10").status_code == 201


def test_a_success_resets_the_account(api: Api):
    for _ in range(2):
        for n in range(4):
            assert login(api, "admin", f"typo-{n}").status_code == 401
        assert login(api, "admin", ADMIN_PASSWORD).status_code == 201
    assert login(api, "admin", "typo").status_code == 401  # 4 + 1: still no lock


def test_many_guesses_at_once_are_no_way_round_the_limit(api: Api, hasher: CountingHasher):
    """Checks in progress count against the allowance: 30 guesses sent together cost at
    most 5 verifications, whatever the threads' order."""
    statuses: list[int] = []
    barrier = threading.Barrier(30)

    def guess(n: int) -> None:
        with httpx.Client(base_url=api.url, timeout=30) as client:
            barrier.wait()
            answer = client.post(LOGIN, json={"username": "admin", "password": f"g{n}"})
            statuses.append(answer.status_code)

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert len(statuses) == 30 and set(statuses) <= {401, 429}
    assert statuses.count(401) <= 5
    assert hasher.verified == statuses.count(401) <= 5


def test_the_dashboard_form_is_behind_the_same_backoff(api: Api, hasher: CountingHasher):
    def form(password: str) -> httpx.Response:
        with httpx.Client(base_url=api.url, timeout=30) as client:
            return client.post("/login", data={"username": "admin", "password": password})

    assert [form(f"guess-{n}").status_code for n in range(5)] == [401] * 5
    refused = form(ADMIN_PASSWORD)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert "too many failed sign-ins for this account" in refused.text
    assert login(api, "admin", ADMIN_PASSWORD).status_code == 429  # one account, one lock
    assert hasher.verified == 5


def test_a_stolen_token_cannot_guess_the_current_password(api: Api, hasher: CountingHasher):
    """A member's token (stolen) can change the password only with the current one; the
    guesses it makes count against the account like sign-ins."""
    thief = api.member("alice")
    before = hasher.verified

    def change(current: str) -> httpx.Response:
        body = {"password": "taken-over-password-1", "current_password": current}
        return thief.patch("/api/v1/users/alice", json=body)

    assert [change(f"guess-{n}").status_code for n in range(5)] == [403] * 5
    refused = change("alice-password-1234")
    assert refused.status_code == 429 and "Retry-After" in refused.headers
    assert hasher.verified - before == 5
    assert login(api, "alice", "alice-password-1234").status_code == 429


# The throttle itself, on a clock the test moves -------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fail(throttle: SignInThrottle, account: str, address: str = "10.0.0.1") -> None:
    with pytest.raises(Unauthorized), throttle.attempt(account, address):
        raise Unauthorized("wrong user name or password")


def refused_for(throttle: SignInThrottle, account: str, address: str = "10.0.0.1") -> int:
    """The Retry-After of a refused attempt, 0 if it was let through."""
    try:
        with throttle.attempt(account, address):
            return 0
    except TooManyRequests as waiting:
        return waiting.retry_after


def test_locks_last_a_window_then_double_up_to_an_hour():
    clock = Clock()
    throttle = SignInThrottle(Limits(per_account=3, per_address=100, window_s=60), clock)
    lengths = []
    for _ in range(8):
        for _ in range(3):
            fail(throttle, "admin")  # let through: the lock before is over
        lengths.append(refused_for(throttle, "admin"))
        clock.now += lengths[-1]
    assert lengths == [60, 120, 240, 480, 960, 1920, 3600, 3600]
    clock.now += 3601 + 3600  # a quiet hour after the last lock: back to the first length
    for _ in range(3):
        fail(throttle, "admin")
    assert refused_for(throttle, "admin") == 60


def test_failures_older_than_the_window_are_forgotten():
    clock = Clock()
    throttle = SignInThrottle(Limits(per_account=3, window_s=60), clock)
    for _ in range(2):
        fail(throttle, "admin")
    clock.now += 61
    for _ in range(2):
        fail(throttle, "admin")
    assert refused_for(throttle, "admin") == 0


def test_memory_is_bounded_and_locks_outlive_idle_records():
    throttle = SignInThrottle(Limits(per_account=2, per_address=10**6, max_keys=100), Clock())
    fail(throttle, "admin")
    fail(throttle, "admin")  # locked
    for n in range(5000):
        fail(throttle, f"user{n}")
    assert len(throttle._records) <= 100
    assert refused_for(throttle, "admin") > 0


def test_an_ipv6_client_is_counted_by_its_64():
    assert address_group("2001:db8:1:2:aaaa::1") == address_group("2001:db8:1:2:ffff::9")
    assert address_group("2001:db8:1:3::1") != address_group("2001:db8:1:2::1")
    assert address_group("::ffff:192.0.2.1") == "192.0.2.1"
    assert address_group("192.0.2.1") == "192.0.2.1"
