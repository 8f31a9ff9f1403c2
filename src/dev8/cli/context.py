"""Building the service the CLI talks to: local mode (SQLite store + Docker provider), or
server mode after `dev8 login` (the same calls through the API)."""

from __future__ import annotations

import functools
import getpass

from dev8.paths import data_dir


@functools.cache
def service():
    from dev8.cli.remote import saved_login

    login = saved_login()
    if login is not None:
        return remote(login)
    from dev8.providers.docker.provider import DockerProvider
    from dev8.service.workspaces import WorkspaceService
    from dev8.sshconfig import authorized_keys
    from dev8.store.store import Store

    return WorkspaceService(
        store=Store.open_sqlite(data_dir() / "dev8.db"),
        provider=DockerProvider(),
        owner=getpass.getuser(),
        authorized_keys=authorized_keys,
    )


def remote(login):
    from dev8.cli.remote import RemoteWorkspaces
    from dev8.client import Client

    client = Client(login.url, token=login.token)
    return RemoteWorkspaces(client, login.user or client.users.me().name)


def in_server_mode() -> bool:
    from dev8.cli.remote import saved_login

    return saved_login() is not None


def local_service(command: str, instead: str):
    """The local service; in server mode, one line saying what to do instead."""
    from dev8.core.errors import InvalidInput

    if in_server_mode():
        raise InvalidInput(f"`dev8 {command}` works in local mode only; in server mode {instead}")
    return service()
