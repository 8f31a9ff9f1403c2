"""Opening the database and bringing its schema up to date with Alembic."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError, ProgrammingError

from dev8.core.errors import DatabaseUnavailable, InvalidInput
from dev8.store.schema import SCHEMA_HEAD


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def normalize_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` mean psycopg 3, the driver dev8 ships."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:  # unparsable, or a port that is no number
        raise InvalidInput(
            f"the database URL is not valid ({exc}); e.g. postgresql://user@host/dev8"
        ) from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise InvalidInput(
            f"unsupported database {parsed.get_backend_name()!r}; use SQLite or PostgreSQL"
        )
    return parsed.render_as_string(hide_password=False)


def open_engine(url: str, pool_size: int | None = None) -> Engine:
    """An engine for ``url``. ``pool_size`` sizes the connection pool for a server that uses
    the database from many threads at once."""
    url = normalize_url(url)
    options: dict[str, Any] = {"future": True, "pool_pre_ping": url.startswith("postgresql")}
    if pool_size:
        options.update(pool_size=pool_size, max_overflow=pool_size, pool_timeout=60)
    engine = create_engine(url, **options)
    if engine.dialect.name == "sqlite":
        if engine.url.database not in (None, "", ":memory:"):
            private_sqlite_files(Path(engine.url.database))
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def private_sqlite_files(path: Path) -> None:
    """Make the database file ``path`` (created if need be) and its journals 0600: they hold
    password and token hashes and sealed secrets. SQLite creates ``-wal``, ``-shm`` and
    ``-journal`` with the mode of the database file, so a database that is 0600 before
    SQLite first opens it keeps them 0600; ones left 0644 by an older dev8 are tightened."""
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                Path(f"{path}{suffix}").chmod(0o600)
    except OSError as exc:
        raise DatabaseUnavailable(f"cannot open the database {path}: {exc.strerror}") from exc


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # WAL stays consistent; commits skip an fsync
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def current_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except (OperationalError, ProgrammingError):
        return None


def migrate(engine: Engine) -> None:
    """Upgrade to the newest schema. Cheap when already there: Alembic is imported only to
    actually migrate, which keeps every CLI command's start-up fast."""
    if current_revision(engine) == SCHEMA_HEAD:
        return
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "dev8.store:migrations")
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Two servers starting at once must not both migrate.
            connection.execute(text("SELECT pg_advisory_xact_lock(4242424242)"))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
