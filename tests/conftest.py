"""Shared test configuration: every test gets its own dev8 data directory."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def dev8_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    home = tmp_path_factory.mktemp("dev8-home")
    monkeypatch.setenv("DEV8_HOME", str(home))
    return home
