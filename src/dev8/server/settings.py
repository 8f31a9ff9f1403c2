"""The server's settings, from ``DEV8_*`` environment variables (pydantic-settings).

A ``DEV8_*`` variable that is neither a setting nor one another part of dev8 reads is not
ignored silently: one that looks like a misspelt setting stops the server with the name it
probably meant, any other is named in a warning at start.

Outside development (``DEV8_DEV=1`` or ``dev8 server --dev``) the server refuses to start
with a missing or well-known secret: ``DEV8_SECRET_KEY`` must be a real key, and an admin
password given in ``DEV8_ADMIN_PASSWORD`` must not be a default one.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dev8.core.errors import InvalidInput
from dev8.core.images import workspace_image
from dev8.core.quotas import parse_size
from dev8.core.resources import parse_memory_mb
from dev8.core.users import validate_password, validate_user_name
from dev8.paths import data_dir
from dev8.providers.aci.settings import VARIABLES as ACI_VARIABLES
from dev8.providers.kubernetes.settings import VARIABLES as KUBERNETES_VARIABLES
from dev8.server.proxies import TrustedProxies
from dev8.service.policy import Limits
from dev8.store.db import sqlite_url
from dev8.store.secretbox import SecretBox, new_key

log = logging.getLogger("dev8.server")
WELL_KNOWN = {"admin", "password", "changeme", "change-me", "changethis", "secret", "dev8", "dev"}
PREFIX = "DEV8_"
# ``DEV8_*`` variables read elsewhere: by the CLI and the SDK, the tests, and inside the
# workspace (its agent and helpers), where a server's environment may well be passed on.
ELSEWHERE = frozenset(
    {
        "DEV8_DEBUG",
        "DEV8_DOTFILES_REPO",
        "DEV8_HOME",
        "DEV8_IMAGE_TAG",
        "DEV8_PROVIDER",
        "DEV8_RESTORE_TIMEOUT",
        "DEV8_SERVER_URL",
        "DEV8_SNAPSHOT_PASSWORD",
        "DEV8_SNAPSHOT_REPOSITORY",
        "DEV8_TEST_DATABASE_URL",
        "DEV8_TEST_PG_PORT",
        "DEV8_TOKEN",
        "DEV8_WARM",
        "DEV8_AGENT_TOKEN",
        "DEV8_LOOPBACK_ONLY",
        "DEV8_WORKSPACE_SUBNETS",
        "DEV8_DISK_INTERVAL",
        "DEV8_QUOTA_HOME_BYTES",
        "DEV8_QUOTA_WORKSPACE_BYTES",
        "DEV8_QUOTA_ENFORCE",
        "DEV8_RESTORING",
        "DEV8_SWAP_PY",
        *KUBERNETES_VARIABLES,
        *ACI_VARIABLES,
    }
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="forbid")

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
    # Remote access (docs/remote-access.md).
    public_url: str | None = Field(
        None,
        description="The address members use, e.g. https://dev8.example.com (default: the "
        "address each request came to).",
    )
    apps_domain: str | None = Field(
        None,
        description="A wildcard DNS name (*.APPS_DOMAIN resolves to the server): each IDE and "
        "shared port gets its own origin, NAME--OWNER.APPS_DOMAIN.",
    )
    max_port_sharing: str = Field(
        "public",
        pattern="^(private|authenticated|public)$",
        description="The widest sharing level a member may give a port.",
    )
    session_hours: int = Field(12, ge=1, le=24 * 30, description="How long a sign-in lasts.")
    tls_cert: Path | None = Field(None, description="PEM certificate (chain) to serve HTTPS.")
    tls_key: Path | None = Field(None, description="The certificate's PEM private key.")
    images: str = Field(
        default_factory=workspace_image,
        description="Comma-separated images the dashboard's create form offers (the first is "
        "its default).",
    )
    # Abuse limits (docs/security.md, "Anonymous clients"): the proxies believed, sign-in
    # backoff (per server process), request bodies.
    trusted_proxies: TrustedProxies = Field(
        "",
        description="Comma-separated addresses and networks (CIDR) of reverse proxies whose "
        "X-Forwarded-For/-Proto are believed; empty: nobody's.",
    )
    login_failures_per_account: int = Field(
        5, ge=1, le=1000, description="Failed sign-ins to one account that lock it."
    )
    login_failures_per_address: int = Field(
        20, ge=1, le=10_000, description="Failed sign-ins from one client address that lock it."
    )
    login_window_s: int = Field(
        300, ge=1, le=3600, description="Window of those failures; first lock's length."
    )
    max_body_bytes: int = Field(
        1024 * 1024,
        ge=64 * 1024,
        le=1024 * 1024 * 1024,
        description="Largest request body (the IDE's relayed requests excepted); 413 beyond.",
    )
    # What a member may have (docs/security.md, "Limits between members"); 0: no limit.
    # Admins are bound by none of these; nobody pins the server's port or one below 1024.
    member_max_workspaces: int = Field(
        8, ge=0, le=100_000, description="Workspaces per member (removed ones count until purged)."
    )
    member_max_cpus: float = Field(8, ge=0, le=256, description="CPUs of a member's workspace.")
    member_max_memory: int = Field(
        16384, ge=0, description="Memory of a member's workspace, e.g. 16g (a bare number: MiB)."
    )
    member_max_quota: int = Field(
        1024**4, ge=0, description="Volume quotas of all a member's workspaces together, e.g. 1t."
    )
    member_max_kept_backups: int = Field(
        20, ge=0, le=100_000, description="Backups the server keeps per member."
    )
    member_pin_ports: bool = Field(
        False, description="Whether members may pin host ports (ide_port, ssh_port)."
    )
    # What a running workspace may write outside its volumes (apt installs, /tmp): no
    # engine here bounds the layer itself, so the server checks every few minutes.
    member_max_writable_layer: int = Field(
        50 * 1024**3,
        ge=0,
        description="Bytes a running workspace may write outside its volumes, e.g. 50g; "
        "beyond it the server stops the workspace. 0: no limit.",
    )
    layer_check_interval_s: float = Field(600.0, gt=0)

    @field_validator(
        "member_max_memory", "member_max_quota", "member_max_writable_layer", mode="before"
    )
    @classmethod
    def _size(cls, value: Any, info: ValidationInfo) -> Any:
        """Text such as 16g or 1t; 0 for no limit."""
        if not isinstance(value, str):
            return value
        if value.strip() == "0":
            return 0
        parse = parse_memory_mb if info.field_name == "member_max_memory" else parse_size
        try:
            return parse(value)
        except InvalidInput as exc:
            raise ValueError(exc.message) from None

    def member_limits(self) -> Limits:
        return Limits(
            max_workspaces=self.member_max_workspaces,
            max_cpus=self.member_max_cpus,
            max_memory_mb=self.member_max_memory,
            max_quota_bytes=self.member_max_quota,
            max_kept_backups=self.member_max_kept_backups,
            pin_ports=self.member_pin_ports,
            images=tuple(self.image_choices()),
            server_port=self.port,
        )

    # Single sign-on (docs/server.md, "Single sign-on").
    oidc_issuer: str | None = Field(
        None,
        description="An OpenID Connect provider's issuer URL; its discovery document is at "
        "ISSUER/.well-known/openid-configuration.",
    )
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    oidc_name: str = Field("Single sign-on", max_length=60, description="The button's label.")
    oidc_scopes: str = "openid email profile"
    github_client_id: str | None = Field(None, description="A GitHub OAuth app's client id.")
    github_client_secret: SecretStr | None = None
    github_url: str = Field(
        "https://github.com", description="GitHub (Enterprise Server: its address)."
    )
    github_api_url: str = Field(
        "https://api.github.com", description="GitHub's API (Enterprise: https://HOST/api/v3)."
    )
    sso_allowed_domains: str = Field(
        "", description="Comma-separated email domains whose verified addresses may sign in."
    )
    sso_allowed_users: str = Field(
        "", description="Comma-separated verified email addresses and GitHub logins."
    )
    sso_allowed_github_orgs: str = Field(
        "", description="Comma-separated GitHub organisations whose members may sign in."
    )
    sso_admins: str = Field(
        "", description="Comma-separated email addresses and GitHub logins made admins."
    )
    password_login: bool = Field(True, description="Whether the password sign-in is offered.")

    def image_choices(self) -> list[str]:
        """The images the create form offers, in order, without blanks or repeats."""
        return list(dict.fromkeys(i.strip() for i in self.images.split(",") if i.strip()))

    def default_image(self) -> str:
        """What a workspace created without naming an image runs: the first of
        ``DEV8_IMAGES`` (on a cluster, a reference its nodes can pull)."""
        return next(iter(self.image_choices()), workspace_image())

    def directory(self) -> Path:
        path = self.server_dir or data_dir() / "server"
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    def database(self) -> str:
        return self.database_url or sqlite_url(self.directory() / "server.db")

    def check(self) -> None:
        """Refuse misspelt variables, and default or missing secrets outside development
        mode."""
        check_environment(os.environ)
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
        if self.apps_domain and not self.public_url:
            raise InvalidInput(
                "DEV8_APPS_DOMAIN needs DEV8_PUBLIC_URL (the main address, where members sign in)"
            )
        self._check_tls()
        self._check_sso()

    def _check_tls(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise InvalidInput("--tls-cert and --tls-key go together (DEV8_TLS_CERT, DEV8_TLS_KEY)")
        for what, path in (("certificate", self.tls_cert), ("key", self.tls_key)):
            if path is not None and not os.access(path, os.R_OK):
                raise InvalidInput(f"cannot read the TLS {what} {path}")

    def _check_sso(self) -> None:
        pairs = (
            ("DEV8_OIDC", self.oidc_client_id, self.oidc_client_secret, self.oidc_issuer),
            ("DEV8_GITHUB", self.github_client_id, self.github_client_secret, "github"),
        )
        for prefix, client_id, secret, where in pairs:
            if bool(client_id) != bool(secret and secret.get_secret_value()):
                raise InvalidInput(f"{prefix}_CLIENT_ID and {prefix}_CLIENT_SECRET go together")
            if client_id and not where:
                raise InvalidInput("DEV8_OIDC_CLIENT_ID needs DEV8_OIDC_ISSUER")
        if self.oidc_issuer and not self.oidc_client_id:
            raise InvalidInput("DEV8_OIDC_ISSUER needs DEV8_OIDC_CLIENT_ID and _SECRET")
        if not self.password_login and not (self.oidc_client_id or self.github_client_id):
            raise InvalidInput(
                "DEV8_PASSWORD_LOGIN=false needs an identity provider (DEV8_OIDC_* or "
                "DEV8_GITHUB_*): nobody could sign in"
            )

    def secret_box(self) -> SecretBox:
        if self.secret_key and self.secret_key.get_secret_value():
            return SecretBox(self.secret_key.get_secret_value())
        return SecretBox(_development_key(self.directory()))


def variable_names() -> list[str]:
    """The environment variable of each setting."""
    return [PREFIX + name.upper() for name in Settings.model_fields]


def check_environment(environ: Mapping[str, str]) -> None:
    """``InvalidInput`` for a ``DEV8_*`` variable that looks like a misspelt setting; a
    warning naming any other that nothing in dev8 reads."""
    known = set(variable_names())
    for name in sorted(environ):
        if not name.startswith(PREFIX) or name in known or name in ELSEWHERE:
            continue
        meant = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
        if meant:
            raise InvalidInput(f"{name} is not a setting; did you mean {meant[0]}?")
        log.warning("%s is set but is not a dev8 setting; it is ignored", name)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and ``overrides``; a bad value is one line naming each
    variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            PREFIX + "_".join(str(part) for part in error["loc"]).upper() + f": {error['msg']}"
            for error in exc.errors()
        )
        raise InvalidInput(problems) from exc


def _development_key(directory: Path) -> str:
    """A key kept next to the database: fine to try dev8, no protection for a stolen disk."""
    path = directory / "development.key"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(new_key())
        log.warning("development mode: generated a secret key in %s", path)
    return path.read_text().strip()
