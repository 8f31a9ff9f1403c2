"""The server's settings, from ``DEV8_*`` environment variables (pydantic-settings).

Outside development (``DEV8_DEV=1`` or ``dev8 server --dev``) the server refuses to start
with a missing or well-known secret: ``DEV8_SECRET_KEY`` must be a real key, and an admin
password given in ``DEV8_ADMIN_PASSWORD`` must not be a default one.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from dev8.core.errors import InvalidInput
from dev8.core.users import validate_password, validate_user_name
from dev8.paths import data_dir
from dev8.store.db import sqlite_url
from dev8.store.secretbox import SecretBox, new_key

log = logging.getLogger("dev8.server")
WELL_KNOWN = {"admin", "password", "changeme", "change-me", "changethis", "secret", "dev8", "dev"}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DEV8_", extra="ignore")

    dev: bool = Field(False, description="Development mode: allows missing secrets.")
    host: str = "127.0.0.1"
    port: int = Field(8700, ge=0, le=65535)
    server_dir: Path | None = Field(
        None, description="Where the server keeps its SQLite database, locks and dev key."
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL; default SQLite in server_dir, postgresql://... for teams.",
    )
    secret_key: SecretStr | None = Field(
        None, description="Fernet key(s), comma-separated, sealing workspace secrets at rest."
    )
    admin_user: str = "admin"
    admin_password: SecretStr | None = None
    idle_timeout_s: int = Field(1800, ge=0, description="Default idle timeout; 0 turns it off.")
    reconcile_interval_s: float = Field(1.0, gt=0)
    observe_interval_s: float = Field(10.0, gt=0)
    max_concurrent_operations: int = Field(4, ge=1, le=64)
    max_attempts: int = Field(3, ge=1, le=20)
    token_days: int = Field(30, ge=1, le=366)
    db_pool_size: int = Field(20, ge=1, le=200)
    shutdown_grace_s: float = Field(10.0, ge=0)

    def directory(self) -> Path:
        path = self.server_dir or data_dir() / "server"
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    def database(self) -> str:
        return self.database_url or sqlite_url(self.directory() / "server.db")

    def check(self) -> None:
        """Refuse default or missing secrets outside development mode."""
        validate_user_name(self.admin_user)
        password = self.admin_password.get_secret_value() if self.admin_password else None
        if password is not None:
            if password.lower() in WELL_KNOWN and not self.dev:
                raise InvalidInput(
                    "DEV8_ADMIN_PASSWORD is a well-known default; choose another or leave it "
                    "unset to get a generated one"
                )
            validate_password(password)
        key = self.secret_key.get_secret_value() if self.secret_key else ""
        if key.lower() in WELL_KNOWN:
            raise InvalidInput("DEV8_SECRET_KEY is a placeholder; generate one: dev8 server keygen")
        if not key and not self.dev:
            raise InvalidInput(
                "DEV8_SECRET_KEY is not set: generate one with `dev8 server keygen` and keep it "
                "apart from the database, or run `dev8 server --dev` to try dev8 out"
            )

    def secret_box(self) -> SecretBox:
        if self.secret_key and self.secret_key.get_secret_value():
            return SecretBox(self.secret_key.get_secret_value())
        return SecretBox(_development_key(self.directory()))


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment and ``overrides``; a bad value is one line naming the
    variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "DEV8_" + "_".join(str(part) for part in first["loc"]).upper()
        raise InvalidInput(f"{name}: {first['msg']}") from None


def _development_key(directory: Path) -> str:
    """A key kept next to the database: fine to try dev8, no protection for a stolen disk."""
    path = directory / "development.key"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(new_key())
        log.warning("development mode: generated a secret key in %s", path)
    return path.read_text().strip()
