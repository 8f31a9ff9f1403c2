"""The databases the server supports, for the tests that use one: SQLite, and a real
PostgreSQL server when ``DEV8_TEST_DATABASE_URL`` names one (``scripts/postgres.sh`` starts
one and prints it; ``scripts/test.sh`` sets it). The PostgreSQL case is marked ``postgres``
and, without the variable, skipped with the reason.

A SQLite database is a copy of one migrated once per session: migrating is most of the cost
of starting a test server (0.3 s of CPU, against 3 ms for the copy), and the migrations still
run, once, on every run.

A pytest plugin (the root conftest loads it), so that every folder's tests share the
fixtures without importing another folder's conftest.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from dev8.store.db import normalize_url, sqlite_url
from dev8.store.store import Store
from tests.marks import POSTGRES

PG_SKIP = (
    "DEV8_TEST_DATABASE_URL is not set; `scripts/postgres.sh` starts a PostgreSQL server "
    "and prints the URL (scripts/test.sh sets it)"
)
KINDS = ["sqlite", pytest.param("postgresql", marks=POSTGRES)]


def postgres_url() -> str | None:
    return os.environ.get("DEV8_TEST_DATABASE_URL")


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database at the newest schema, to be copied."""
    path = tmp_path_factory.mktemp("migrated") / "server.db"
    Store.open(sqlite_url(path), lock_dir=path.parent / "locks").engine.dispose()
    return path


@pytest.fixture
def sqlite_store(migrated_sqlite: Path, tmp_path: Path) -> Iterator[Store]:
    """A fresh local-mode store (SQLite), for tests of the services on the fake provider."""
    path = tmp_path / "dev8.db"
    shutil.copy(migrated_sqlite, path)
    opened = Store.open_sqlite(path)
    yield opened
    opened.engine.dispose()


@pytest.fixture(params=KINDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, migrated_sqlite: Path
) -> Iterator[str]:
    """A fresh database for one test."""
    yield from database(request.param, tmp_path, migrated_sqlite)


@pytest.fixture(scope="module", params=KINDS)
def module_database_url(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    migrated_sqlite: Path,
) -> Iterator[str]:
    """A fresh database for a module whose tests each make their own resources."""
    yield from database(request.param, tmp_path_factory.mktemp("db"), migrated_sqlite)


def database(kind: str, directory: Path, migrated_sqlite: Path) -> Iterator[str]:
    if kind == "sqlite":
        path = directory / "server.db"
        shutil.copy(migrated_sqlite, path)
        yield sqlite_url(path)
        return
    base = postgres_url()
    if not base:
        pytest.skip(PG_SKIP)
    with fresh_postgres_database(base) as url:
        yield url


class fresh_postgres_database:
    """A database of its own on the PostgreSQL server ``base``, dropped afterwards."""

    def __init__(self, base: str) -> None:
        self.admin = create_engine(normalize_url(base), isolation_level="AUTOCOMMIT")
        self.name = f"dev8_test_{secrets.token_hex(4)}"
        self.url = make_url(normalize_url(base)).set(database=self.name)

    def __enter__(self) -> str:
        with self.admin.connect() as connection:
            connection.execute(text(f"CREATE DATABASE {self.name}"))
        return self.url.render_as_string(hide_password=False)

    def __exit__(self, *_exc: object) -> None:
        with self.admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)"))
        self.admin.dispose()
