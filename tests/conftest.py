"""Shared test configuration: every test gets its own dev8 data directory, and is marked by
what it needs (``tests.marks``)."""

from __future__ import annotations

import pytest

from tests.marks import mark_items

# Fixtures every folder shares, as plugins rather than imports of another folder's conftest.
pytest_plugins = ("tests.databases",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_items(items)


@pytest.fixture(autouse=True)
def dev8_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    home = tmp_path_factory.mktemp("dev8-home")
    monkeypatch.setenv("DEV8_HOME", str(home))
    return home
