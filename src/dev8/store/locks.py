"""Per-workspace locks that serialise operations across processes, and die with them.

Both kinds are released by the operating system or the database when their holder dies,
even by ``kill -9``: that is how the reconciler tells an operation that is still running
somewhere from one whose process is gone (see ``dev8.service.operations``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from sqlalchemy import Engine, text

from dev8.core.errors import Conflict

BUSY = "another dev8 command is changing this workspace; wait for it to finish"


class Locks(Protocol):
    def hold(self, key: str, wait: bool = True) -> contextlib.AbstractContextManager[None]:
        """Hold the lock named ``key``; without ``wait``, raise ``Conflict`` if it is taken."""


class FileLocks:
    """``flock`` on one file per key: one host, any number of processes (SQLite)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @contextlib.contextmanager
    def hold(self, key: str, wait: bool = True) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True)
        with (self.directory / f"{key}.lock").open("w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                raise Conflict(BUSY) from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


class AdvisoryLocks:
    """PostgreSQL session advisory locks: any number of server processes on any hosts.

    The lock lives on a connection of its own, outside any transaction, so that holding it
    for a long operation keeps no transaction open.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextlib.contextmanager
    def hold(self, key: str, wait: bool = True) -> Iterator[None]:
        number = advisory_key(key)
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            if wait:
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": number})
            elif not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": number}).scalar():
                raise Conflict(BUSY)
            try:
                yield
            finally:
                try:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": number})
                except Exception:
                    # A broken connection lost the lock already; never reuse it.
                    conn.invalidate()
                    raise


class NoLocks:
    """For a store only one thread of one process uses (tests on an in-memory database)."""

    @contextlib.contextmanager
    def hold(self, key: str, wait: bool = True) -> Iterator[None]:
        yield


def advisory_key(key: str) -> int:
    """A stable signed 64-bit number for ``key``; a collision only serialises two keys."""
    return int.from_bytes(hashlib.sha256(f"dev8:{key}".encode()).digest()[:8], "big", signed=True)
