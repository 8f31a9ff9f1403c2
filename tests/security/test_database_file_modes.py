"""Attack: another local account reads the store's SQLite files. The database was made 0600
after its first use, but its ``-wal`` and ``-shm`` (created by SQLite with the mode the
database had then) were 0644, and the WAL holds the newest rows: password and token hashes,
sealed secrets (in local mode, secrets in the clear). Now the database is 0600 before SQLite
first opens it, so its journals are born 0600, and files an older dev8 left 0644 are
tightened when the store opens.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dev8.core.clock import utcnow
from dev8.core.users import Role, User
from dev8.store.db import sqlite_url
from dev8.store.store import Store

FILES = ("", "-wal", "-shm")


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The umask most accounts have (022), which would leave a new file 0644."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def modes(database: Path) -> set[str]:
    """The modes of the database, its -wal and its -shm (all three must exist)."""
    return {oct(stat.S_IMODE(os.stat(f"{database}{suffix}").st_mode)) for suffix in FILES}


def write_a_user(store: Store) -> None:
    """A write, so that SQLite has made its -wal and -shm (it makes them lazily)."""
    user = User(id=uuid.uuid4().hex, name="alice", role=Role.MEMBER, password_hash="$argon2id$x")
    store.users.add(user, utcnow())


@pytest.mark.parametrize("opening", ["local", "server"])
def test_a_new_database_and_its_journals_are_private(tmp_path: Path, opening: str):
    database = tmp_path / "dev8.db"
    if opening == "local":
        store = Store.open_sqlite(database)
    else:
        store = Store.open(sqlite_url(database), lock_dir=tmp_path / "locks")
    try:
        write_a_user(store)
        assert modes(database) == {"0o600"}
    finally:
        store.engine.dispose()


def test_files_an_older_version_left_0644_are_tightened(tmp_path: Path):
    database = tmp_path / "dev8.db"
    older = sqlite3.connect(database)  # held open, so that its -wal and -shm stay
    older.execute("PRAGMA journal_mode=WAL")
    older.execute("CREATE TABLE leftover (x)")
    older.commit()
    assert modes(database) == {"0o644"}
    try:
        store = Store.open_sqlite(database)
        write_a_user(store)
        assert modes(database) == {"0o600"}
        store.engine.dispose()
    finally:
        older.close()
