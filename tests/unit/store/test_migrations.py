"""Upgrading a database written by an older dev8 keeps its rows."""

import sqlite3

from alembic import command
from alembic.config import Config

from dev8.store.db import open_engine, sqlite_url
from dev8.store.store import Store


def test_a_0001_database_upgrades_in_place(tmp_path):
    path = tmp_path / "old.db"
    config = Config()
    config.set_main_option("script_location", "dev8.store:migrations")
    with open_engine(sqlite_url(path)).begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO workspaces VALUES ('i', 'n', 'o', 'img', 'sha256:1', 2, 4096, '{}', '{}',"
            " 'running', 'running', '', NULL, '{}', '{}', '{}', '2026-11-26 00:00:00',"
            " '2026-11-26 00:00:00')"
        )
    workspace = Store.open_sqlite(path).find("o", "n")
    assert workspace is not None and workspace.image_id == "sha256:1"
    assert workspace.quotas == {} and workspace.idle_timeout_s is None
    assert workspace.last_activity_at is None


def test_a_0002_database_keeps_its_history_through_0003(tmp_path):
    path = tmp_path / "old.db"
    config = Config()
    config.set_main_option("script_location", "dev8.store:migrations")
    with open_engine(sqlite_url(path)).begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0002")
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO workspaces VALUES ('i', 'n', 'o', 'img', 'sha256:1', 2, 4096, '{}', '{}',"
            " 'running', 'running', '', NULL, '{}', '{}', '{}', '2026-11-26 00:00:00',"
            " '2026-11-26 00:00:00', '{}', NULL, NULL)"
        )
        db.execute(
            "INSERT INTO operations VALUES ('op', 'i', 'start', 'o', 'succeeded', '',"
            " '2026-11-26 00:00:00', '2026-11-26 00:00:01')"
        )
    store = Store.open_sqlite(path)
    [operation] = store.operations("i")
    assert (operation.owner, operation.workspace_name, operation.attempts) == ("o", "n", 0)
    store.delete("i")
    assert store.get_operation("op").workspace_id is None
