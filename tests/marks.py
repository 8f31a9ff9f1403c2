"""Tests are marked by what they need to run, not by the folder they live in:

- ``engine``: a real Docker engine and the dev8 workspace image;
- ``postgres``: a real PostgreSQL server (``DEV8_TEST_DATABASE_URL``);
- ``browser``: a real browser (declared for the dashboard's tests to come).

So ``pytest -m "not engine and not postgres"`` runs everything that needs neither, the
server's API and reconciler on SQLite and the fake provider included.

A fixture that needs one of them says so with ``@needs(ENGINE)`` (under ``@pytest.fixture``);
every test that uses it, directly or through other fixtures, gets the mark (``mark_items``,
called by the root conftest). A database parametrisation marks its PostgreSQL case itself
(``pytest.param("postgresql", marks=POSTGRES)``), and a module whose fixtures do not tell
sets ``pytestmark``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

import pytest

ENGINE, POSTGRES_NAME, BROWSER = "engine", "postgres", "browser"
POSTGRES = pytest.mark.postgres
_ATTRIBUTE = "dev8_needs"
F = TypeVar("F", bound=Callable[..., object])


def needs(mark: str) -> Callable[[F], F]:
    """Declare that a fixture function needs ``mark``'s resource."""

    def declare(function: F) -> F:
        setattr(function, _ATTRIBUTE, mark)
        return function

    return declare


def marks_from_fixtures(item: pytest.Item) -> set[str]:
    """What the fixtures ``item`` uses (the ones in effect where it lives) declare."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return set()
    found = set()
    for definitions in info.name2fixturedefs.values():
        mark = getattr(definitions[-1].func, _ATTRIBUTE, None) if definitions else None
        if mark is not None:
            found.add(mark)
    return found


def mark_items(items: Iterable[pytest.Item]) -> None:
    for item in items:
        for mark in sorted(marks_from_fixtures(item)):
            item.add_marker(getattr(pytest.mark, mark))
