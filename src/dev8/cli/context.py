"""Building the service the CLI talks to (local mode: SQLite store + Docker provider)."""

from __future__ import annotations

import functools
import getpass

from dev8.paths import data_dir
from dev8.providers.docker.provider import DockerProvider
from dev8.service.workspaces import WorkspaceService
from dev8.sshconfig import authorized_keys
from dev8.store.store import Store


@functools.cache
def service() -> WorkspaceService:
    return WorkspaceService(
        store=Store.open_sqlite(data_dir() / "dev8.db"),
        provider=DockerProvider(),
        owner=getpass.getuser(),
        authorized_keys=authorized_keys,
    )
