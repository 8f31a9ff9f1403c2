"""Shared test configuration: every test gets its own dev8 data directory, passwords are
hashed at Argon2id's lowest cost, and every test is marked by what it needs
(``tests.marks``)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher

from dev8.service import accounts
from tests.marks import mark_items

# Every `dev8` a test runs runs in its own process, as it did before the warm process
# (``dev8.cli.warm``): one warm process per test's code would outlive the test. The warm
# process's own tests turn it back on.
os.environ["DEV8_WARM"] = "off"

# Fixtures every folder shares, as plugins rather than imports of another folder's conftest.
pytest_plugins = ("tests.databases",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_items(items)


@pytest.fixture(autouse=True)
def dev8_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    home = tmp_path_factory.mktemp("dev8-home")
    monkeypatch.setenv("DEV8_HOME", str(home))
    return home


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashes() -> Iterator[None]:
    """Argon2id at its lowest cost, in this process: nearly every server test creates a
    user, and the default cost (tuned to slow down an attacker) was a fifth of their run
    time. Hashing and checking are the same code; only the hash's stored parameters differ.
    A ``dev8`` or ``dev8 server`` a test starts as a subprocess keeps the default cost."""
    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(accounts, "_hasher", cheap)
        patch.setattr(accounts, "_DUMMY_HASH", cheap.hash("not anyone's password"))
        yield
