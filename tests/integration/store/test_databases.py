"""The store on both databases the server supports: SQLite and a real PostgreSQL server
(``database_url`` from ``tests.databases``: marked ``postgres``, skipped with the reason
when ``DEV8_TEST_DATABASE_URL`` is not set)."""

from __future__ import annotations

import threading
import time

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from dev8.core.errors import Conflict
from dev8.core.resources import Resources
from dev8.core.workspace import Workspace
from dev8.store.models import Base
from dev8.store.store import Store, new_operation


@pytest.fixture
def store(database_url, tmp_path):
    opened = Store.open(database_url, lock_dir=tmp_path / "locks", pool_size=10)
    yield opened
    opened.engine.dispose()


def test_the_migrations_make_exactly_the_models(store):
    with store.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []


def test_an_operation_is_claimed_by_one_of_many_claimers(store):
    workspace = Workspace(
        id="w1", name="w", owner="o", image_ref="i", image_id="s", resources=Resources(1, 1024)
    )
    operation = new_operation(workspace, "start", "o")
    store.add(workspace, [operation])
    winners, barrier = [], threading.Barrier(8)

    def claim() -> None:
        barrier.wait()
        if store.claim(operation) is not None:
            winners.append(1)

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Claiming alone does not exclude (the workspace lock does); it counts every attempt.
    assert store.get_operation(operation.id).attempts == len(winners) >= 1


def test_the_lock_excludes_other_holders_and_dies_with_its_session(store, tmp_path):
    if store.engine.dialect.name != "postgresql":
        pytest.skip("advisory locks are PostgreSQL's; SQLite's file locks are in tests/unit")
    other = Store.open(store.engine.url.render_as_string(False), lock_dir=tmp_path / "other")
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        try:
            with other.lock("w1"):
                held.set()
                release.wait(30)
        except Exception:
            held.set()

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(10)
    with pytest.raises(Conflict), store.lock("w1", wait=False):
        pass
    # The holder's database session dies (as when its server is killed): the lock goes.
    with store.engine.connect() as connection:
        killed = connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
                " AND pid <> pg_backend_pid() AND database ="
                " (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        ).all()
    assert killed == [(True,)]
    deadline = time.monotonic() + 10
    while True:
        try:
            with store.lock("w1", wait=False):
                break
        except Conflict:
            assert time.monotonic() < deadline, "the lock outlived its session"
            time.sleep(0.05)
    release.set()
    holder.join(10)
