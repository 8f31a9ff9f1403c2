"""Server mode for the CLI: the same calls as the local service, made through the API.

`dev8 login URL` stores the server's address and an API token (``server.json`` in the dev8
data directory, mode 0600); while it is there every workspace command goes through the
server; `dev8 logout` removes it and the CLI is in local mode again.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dev8.client import Client
from dev8.client.models import Change, Progress
from dev8.client.models import Workspace as RemoteWorkspace
from dev8.core.errors import InvalidInput, NotFound
from dev8.core.workspace import Operation, Workspace
from dev8.paths import data_dir
from dev8.service.workspaces import CreateRequest


@dataclass
class Login:
    url: str
    token: str
    token_id: str = ""
    user: str = ""


def login_file() -> Path:
    return data_dir() / "server.json"


def saved_login() -> Login | None:
    """The server to use: ``DEV8_SERVER_URL`` + ``DEV8_TOKEN``, else the one logged in to."""
    url, token = os.environ.get("DEV8_SERVER_URL"), os.environ.get("DEV8_TOKEN")
    if url and token:
        return Login(url, token)
    try:
        data = json.loads(login_file().read_text())
        return Login(data["url"], data["token"], data.get("token_id", ""), data.get("user", ""))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        raise InvalidInput(
            f"{login_file()} is damaged; run `dev8 logout` and log in again"
        ) from None


def save_login(login: Login) -> Path:
    _write_private(login_file(), login.__dict__)
    return login_file()


def _quiet(_message: str) -> None:
    pass


def _passwords_file() -> Path:
    return data_dir() / "server-ide-passwords.json"


def _passwords() -> dict[str, str]:
    try:
        return json.loads(_passwords_file().read_text())
    except (FileNotFoundError, ValueError):
        return {}


def _save_password(key: str, password: str) -> None:
    _write_private(_passwords_file(), {**_passwords(), key: password})


def _write_private(path: Path, data: object) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(data, handle)
    path.chmod(0o600)


class RemoteWorkspaces:
    """What the CLI needs of a workspace service, from a dev8 server."""

    def __init__(self, client: Client, user: str) -> None:
        self.client = client
        self.owner = user

    # Queries ----------------------------------------------------------------------------
    def ping(self) -> None:
        self.client.health()

    def find(self, name: str) -> Workspace:
        return self.client.workspaces.get(name).to_workspace()

    def get(self, name: str) -> Workspace:
        return self.find(name)

    def list(self) -> list[Workspace]:
        return [w.to_workspace() for w in self.client.workspaces.iter(owner=self.owner)]

    def records(self) -> list[Workspace]:
        return self.list()

    def _model(self, name: str) -> RemoteWorkspace:
        """A handle on ``name`` without fetching it (removed ones included)."""
        return RemoteWorkspace(self.client, {"name": name, "owner": self.owner})

    def history(self, name: str, limit: int = 50) -> list[Operation]:
        return [operation.to_operation() for operation in self._model(name).history(limit)]

    def agent_status_of(self, workspace: Workspace) -> dict:
        return self.client.workspaces.get(workspace.name).agent_status()

    def volume_names(self, name: str) -> list[str]:
        return [volume["name"] for volume in self._model(name).volumes()]

    def logs(self, name: str, follow: bool = False, tail: int | None = None) -> Iterator[bytes]:
        if follow:
            raise InvalidInput("`dev8 logs --follow` works in local mode only")
        yield self.client.workspaces.get(name).logs(tail or 10000).encode()

    def ide_password(self, name: str) -> str:
        """The server never returns secrets: the CLI chose the password when it created the
        workspace and kept it here; elsewhere, set a new one with the API."""
        password = _passwords().get(self._password_key(self.find(name)))
        if password is None:
            raise InvalidInput(
                f"the IDE password of {name} was not set from this machine, and the server "
                f"never returns secrets; set a new one: PATCH /api/v1/workspaces/{name} "
                "with ide_password"
            )
        return password

    def _password_key(self, workspace: Workspace) -> str:
        return f"{self.client.base_url} {workspace.id}"

    # Changes ----------------------------------------------------------------------------
    def _wait(self, change: Change, progress: Progress) -> Workspace:
        return change.wait(progress).to_workspace()

    def create(self, request: CreateRequest, progress: Progress = _quiet) -> Workspace:
        return self._wait(self._create(request, start=False), progress)

    def up(self, request: CreateRequest, progress: Progress = _quiet, **_: object) -> Workspace:
        try:
            model = self.client.workspaces.get(request.name)
        except NotFound:
            return self._wait(self._create(request, start=True), progress)
        return self._wait(model.start(), progress)

    def _create(self, request: CreateRequest, start: bool) -> Change:
        password = request.code_server_password or secrets.token_urlsafe(18)
        change = self.client.workspaces.create(
            request.name,
            image=request.image,
            cpus=request.resources.cpus,
            memory_mb=request.resources.memory_mb,
            env=request.env,
            secrets=request.secrets,
            ide_password=password,
            idle_timeout_s=request.idle_timeout_s,
            quotas=request.quotas or None,
            ide_port=request.host_ports.get("ide"),
            ssh_port=request.host_ports.get("ssh"),
            start=start,
        )
        _save_password(self._password_key(change.workspace.to_workspace()), password)
        return change

    def start(
        self, name: str, progress: Progress = _quiet, wait: bool = True, **_: object
    ) -> Workspace:
        change = self.client.workspaces.get(name).start()
        return self._wait(change, progress) if wait else change.workspace.to_workspace()

    def stop(self, name: str, progress: Progress = _quiet) -> Workspace:
        return self._wait(self.client.workspaces.get(name).stop(), progress)

    def restart(self, name: str, progress: Progress = _quiet, **_: object) -> Workspace:
        return self._wait(self.client.workspaces.get(name).restart(), progress)

    def rebuild(
        self, name: str, image: str | None = None, progress: Progress = _quiet, **_: object
    ) -> Workspace:
        return self._wait(self.client.workspaces.get(name).rebuild(image), progress)

    def remove(self, name: str, purge: bool = False, progress: Progress = _quiet) -> list[str]:
        change = self._model(name).remove(purge=purge)
        for operation in change.operations:
            operation.wait(progress)
        return list(change.operations[-1].attrs["outcome"].get("destroyed_volumes", []))
