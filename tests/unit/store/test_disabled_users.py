"""users.disabled_at (migration 0008): a database written before it keeps its users, all
enabled; the store reads, writes and counts the state."""

import sqlite3
from datetime import UTC, datetime

from alembic import command
from alembic.config import Config

from dev8.core.users import Role, User
from dev8.store.db import open_engine, sqlite_url
from dev8.store.store import Store

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def migrate(path, revision: str, down: bool = False) -> None:
    config = Config()
    config.set_main_option("script_location", "dev8.store:migrations")
    with open_engine(sqlite_url(path)).begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def test_a_0007_database_keeps_its_users_enabled(tmp_path):
    path = tmp_path / "old.db"
    migrate(path, "0007")
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO users (id, name, role, password_hash, ssh_keys, created_at,"
            " updated_at) VALUES ('u1', 'alice', 'admin', 'hash', '', '2026-12-01 00:00:00',"
            " '2026-12-01 00:00:00')"
        )
    users = Store.open_sqlite(path).users
    alice = users.by_name("alice")
    assert alice is not None and alice.disabled_at is None and not alice.disabled
    assert users.count(Role.ADMIN, enabled_only=True) == 1


def test_0008_downgrades_and_upgrades_again(tmp_path):
    path = tmp_path / "db.db"
    migrate(path, "0008")
    migrate(path, "0007", down=True)
    with sqlite3.connect(path) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(users)")]
    assert "disabled_at" not in columns and "dotfiles_repo" in columns
    migrate(path, "0008")
    with sqlite3.connect(path) as db:
        assert "disabled_at" in [row[1] for row in db.execute("PRAGMA table_info(users)")]


def test_the_state_round_trips_and_counts(tmp_path):
    users = Store.open_sqlite(tmp_path / "dev8.db").users
    for name, role in (("root", Role.ADMIN), ("boss", Role.ADMIN), ("bob", Role.MEMBER)):
        users.add(User(id=f"{name}-id", name=name, role=role), NOW)
    users.update("boss-id", NOW, disabled_at=NOW)
    boss = users.get("boss-id")
    assert boss.disabled and boss.disabled_at == NOW
    assert users.count(Role.ADMIN) == 2 and users.count(Role.ADMIN, enabled_only=True) == 1
    assert users.count() == 3 and users.count(enabled_only=True) == 2
    users.update("boss-id", NOW, disabled_at=None)
    assert not users.get("boss-id").disabled
    assert users.count(Role.ADMIN, enabled_only=True) == 2
