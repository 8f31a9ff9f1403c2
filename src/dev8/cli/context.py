"""The backends the CLI talks to, chosen once: local mode (SQLite store + the provider named
by ``DEV8_PROVIDER``) or, after `dev8 login`, server mode (the same calls through the API).

Each is built on first use, so a command imports only the mode it runs in; `--help` and
`--version` import none of it. Commands that exist in one mode only ask ``local_only`` or
``server_only``, which refuse in the other mode with one line saying what to do instead.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar, cast

from dev8.cli.login import Login, saved_login
from dev8.core.errors import InvalidInput

if TYPE_CHECKING:
    from dev8.cli.backends import (
        AccessBackend,
        BackupBackend,
        SnapshotBackend,
        WorkspaceBackend,
    )
    from dev8.cli.remote import RemoteWorkspaces
    from dev8.cli.remote_backups import RemoteBackups
    from dev8.providers.base import Provider
    from dev8.service.backups import BackupService
    from dev8.service.snapshots import SnapshotService
    from dev8.service.workspaces import WorkspaceService
    from dev8.store.store import Store

Seen = TypeVar("Seen")


def in_server_mode() -> bool:
    return saved_login() is not None


@functools.cache
def workspaces() -> WorkspaceBackend:
    login = saved_login()
    return _local() if login is None else remote(login)


def looked(look: Callable[[WorkspaceBackend], Seen]) -> Seen:
    """What ``look`` sees of the workspaces. In local mode, on a backend with a reader
    (``registry.make_reader``), first through read-only views of the database and the
    engine, which import neither SQLAlchemy nor an engine's SDK; when those cannot answer,
    or when what is observed must be recorded (a state that changed), they write nothing
    and ``look`` runs again on ``workspaces()``."""
    from dev8.providers.base import ReaderUnavailable
    from dev8.providers.registry import make_reader
    from dev8.store.readonly import WriteNeeded

    if saved_login() is None:
        try:
            reader = make_reader()
            if reader is not None:
                return look(_read_only(reader))
        except (WriteNeeded, ReaderUnavailable):
            pass
    return look(workspaces())


def access() -> AccessBackend:
    """The ways into workspaces: loopback ports and agents here, or the server's tunnels."""
    login = saved_login()
    if login is None:
        from dev8.cli.local_access import LocalAccess

        return LocalAccess(_local())
    return remote(login)


def backups() -> BackupBackend:
    login = saved_login()
    if login is None:
        return _local_backups()
    from dev8.cli.remote_backups import RemoteBackups

    return RemoteBackups(remote(login))


def snapshots() -> SnapshotBackend:
    login = saved_login()
    if login is None:
        return _local_snapshots()
    from dev8.cli.remote_backups import RemoteSnapshots

    return RemoteSnapshots(remote(login))


def local_only(command: str, instead: str) -> WorkspaceService:
    """The local service; in server mode ``InvalidInput`` saying what to do ``instead``."""
    if in_server_mode():
        raise InvalidInput(f"`dev8 {command}` works in local mode only; in server mode {instead}")
    return _local()


def require_server(what: str, instead: str = "") -> Login:
    """The server logged in to; in local mode ``InvalidInput`` saying that ``what`` needs
    one, and what to do ``instead``."""
    login = saved_login()
    if login is None:
        raise InvalidInput(
            f"{what} needs a dev8 server: log in to one with `dev8 login URL`"
            + (f"; {instead}" if instead else "")
        )
    return login


def server_only(what: str, instead: str = "") -> RemoteWorkspaces:
    """The server's workspaces; in local mode ``InvalidInput`` (see ``require_server``)."""
    return remote(require_server(what, instead))


def server_backups(command: str, instead: str) -> RemoteBackups:
    """The backups a server keeps (server mode only, like ``server_only``)."""
    from dev8.cli.remote_backups import RemoteBackups

    return RemoteBackups(server_only(command, instead))


def archive_checker() -> BackupService:
    """What checks an archive file on this machine: the same in both modes."""
    return _local_backups()


@functools.cache
def _local() -> WorkspaceService:
    import getpass

    from dev8.cli.ssh import authorized_keys
    from dev8.paths import data_dir
    from dev8.providers.registry import make_provider
    from dev8.service.workspaces import WorkspaceService
    from dev8.store.store import Store

    return WorkspaceService(
        store=Store.open_sqlite(data_dir() / "dev8.db"),
        provider=make_provider(),
        owner=getpass.getuser(),
        authorized_keys=authorized_keys,
    )


def _read_only(reader: Provider) -> WorkspaceService:
    """The local service over stand-ins that read (``ReadOnlyStore``, ``EngineReader``) and
    raise rather than write or do anything else, for ``looked``."""
    import getpass

    from dev8.cli.agent_reports import OneReportPerAgent
    from dev8.core.environment import AGENT_TOKEN
    from dev8.paths import data_dir
    from dev8.service.workspaces import WorkspaceService
    from dev8.store.readonly import ReadOnlyStore

    store, owner = ReadOnlyStore(data_dir() / "dev8.db"), getpass.getuser()
    recorded = store.list(owner)
    tokens = {ws.agent_url: ws.secrets.get(AGENT_TOKEN, "") for ws in recorded if ws.agent_url}
    return WorkspaceService(
        store=cast("Store", store),
        provider=reader,
        owner=owner,
        agent=OneReportPerAgent(tokens),
    )


def _local_backups() -> BackupService:
    from dev8.service.backups import BackupService

    return BackupService(_local())


def _local_snapshots() -> SnapshotBackend:
    from dev8.service.snapshots import SnapshotService

    return SnapshotService(_local())


def local_snapshots(command: str, instead: str) -> SnapshotService:
    """The local snapshot service, for the commands that manage its repository."""
    from dev8.service.snapshots import SnapshotService

    return SnapshotService(local_only(command, instead))


@functools.cache
def remote(login: Login) -> RemoteWorkspaces:
    from dev8.cli.remote import RemoteWorkspaces
    from dev8.client import Client

    client = Client(login.url, token=login.token)
    return RemoteWorkspaces(client, login.user or client.users.me().name)
