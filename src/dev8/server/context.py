"""Everything a request or the reconciler needs, built once per server process."""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from dev8.core.addresses import Addresses
from dev8.core.errors import DatabaseUnavailable
from dev8.core.users import User
from dev8.core.workspace import Operation
from dev8.providers.base import Provider
from dev8.providers.registry import make_provider
from dev8.server.metrics import Metrics
from dev8.server.settings import Settings
from dev8.service.accounts import Accounts
from dev8.service.agent_client import AgentClient
from dev8.service.kept_backups import KeptBackups
from dev8.service.policy import MemberPolicy
from dev8.service.workspaces import WorkspaceService
from dev8.store.store import Store


@dataclass
class ServerContext:
    settings: Settings
    store: Store
    provider: Provider
    accounts: Accounts
    metrics: Metrics
    kept_backups: KeptBackups  # backups and snapshots, in the server's directory
    agent: AgentClient = field(default_factory=AgentClient)
    # Set by the running reconciler: a queued operation starts now, not at the next tick.
    wake: Callable[[], None] = field(default=lambda: None)

    @classmethod
    def open(
        cls,
        settings: Settings,
        provider: Provider | None = None,
        agent: AgentClient | None = None,
    ) -> ServerContext:
        """Open (and migrate) the database; nothing runs yet."""
        settings.check()
        try:
            store = Store.open(
                settings.database(),
                lock_dir=settings.directory() / "locks",
                secret_box=settings.secret_box(),
                pool_size=settings.db_pool_size,
            )
        except OperationalError as exc:
            reason = str(exc.orig or exc).strip().splitlines()[0]
            where = make_url(settings.database()).render_as_string(hide_password=True)
            raise DatabaseUnavailable(f"cannot open the database {where}: {reason}") from exc
        store.check_secret_key()
        directory = settings.directory()
        kept = KeptBackups(directory / "backups", snapshot_home=directory)
        return cls(
            settings,
            store,
            provider or make_provider(),
            Accounts(store),
            Metrics(store),
            kept,
            agent or AgentClient(),
        )

    def bootstrap(self) -> None:
        """First start: create the admin and show a generated password, once."""
        self.store.seal_plaintext_secrets()
        password = self.settings.admin_password
        user, generated = self.accounts.ensure_admin(
            self.settings.admin_user, password.get_secret_value() if password else None
        )
        if user is not None and generated:
            # Printed, never logged: this is the only place the password ever appears.
            print(
                f"dev8 server: created the admin user {user.name!r} with password {generated}\n"
                "  (shown this once; `dev8 login URL` with it, then change it)",
                file=sys.stderr,
                flush=True,
            )

    def service(self, owner: str, actor: str | None = None) -> WorkspaceService:
        """The service over ``owner``'s workspaces, acting as ``actor`` (default: the
        owner). The one way the server makes a service: requests, the reconciler and the
        operations it runs."""
        return WorkspaceService(
            store=self.store,
            provider=self.provider,
            owner=owner,
            actor=actor,
            authorized_keys=lambda: self._ssh_keys(owner),
            account_dotfiles=lambda: self._dotfiles(owner),
            agent=self.agent,
            handlers=self.kept_backups.handlers(),
            relay=self.addresses(),
            default_image=self.settings.default_image(),
        )

    def policy(self, user: User) -> MemberPolicy:
        """What ``user`` may ask for: a member, within the admin's limits."""
        limits = self.settings.member_limits()
        return MemberPolicy(limits, not user.is_admin, self.kept_backups.count)

    def addresses(self, base_url: str | None = None) -> Addresses:
        """Where members reach workspaces: ``DEV8_PUBLIC_URL``, else ``base_url`` (the
        address a request came to), else the address the server listens on."""
        settings = self.settings
        host = settings.host
        if host in ("0.0.0.0", "::", ""):
            host = socket.getfqdn()
        base = settings.public_url or base_url or f"http://{host}:{settings.port}"
        return Addresses(base.rstrip("/"), settings.apps_domain)

    def service_for(self, operation: Operation) -> WorkspaceService:
        """The service a queued ``operation`` runs in: its owner's, as whoever asked."""
        return self.service(operation.owner, operation.actor)

    def _ssh_keys(self, owner: str) -> str:
        user = self.store.users.by_name(owner)
        return user.ssh_keys if user else ""

    def _dotfiles(self, owner: str) -> str:
        user = self.store.users.by_name(owner)
        return user.dotfiles_repo if user else ""
