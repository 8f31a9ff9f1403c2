"""Server mode for the CLI: the workspace calls of ``WorkspaceBackend`` and the ways in of
``AccessBackend``, made through the API with the SDK (``dev8.client``): every stream into a
workspace is a tunnel through the server. Which server, and its token, come from
``dev8.cli.login``."""

from __future__ import annotations

import builtins
import json
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path

from dev8.cli.backends import ByteStream, PortOpener, Progress, quiet
from dev8.cli.login import write_private
from dev8.client import Client
from dev8.client.models import Change
from dev8.client.models import Workspace as RemoteWorkspace
from dev8.core.errors import Conflict, InvalidInput, NotFound
from dev8.core.workspace import CreateRequest, Operation, Workspace
from dev8.paths import data_dir

SSHD_PORT = 2222  # sshd inside every workspace (on its loopback in server mode)


def _passwords_file() -> Path:
    return data_dir() / "server-ide-passwords.json"


def _passwords() -> dict[str, str]:
    try:
        found = json.loads(_passwords_file().read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _save_password(key: str, password: str) -> None:
    write_private(_passwords_file(), {**_passwords(), key: password})


class RemoteWorkspaces:
    """``WorkspaceBackend`` from a dev8 server: the workspaces of ``user`` there."""

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

    def list(self) -> builtins.list[Workspace]:
        return [w.to_workspace() for w in self.client.workspaces.iter(owner=self.owner)]

    def records(self) -> builtins.list[Workspace]:
        return self.list()

    def _model(self, name: str) -> RemoteWorkspace:
        """A handle on ``name`` without fetching it (removed ones included)."""
        return RemoteWorkspace(self.client, {"name": name, "owner": self.owner})

    def history(self, name: str, limit: int = 50) -> builtins.list[Operation]:
        return [operation.to_operation() for operation in self._model(name).history(limit)]

    def agent_status_of(self, workspace: Workspace) -> dict:
        return self.client.workspaces.get(workspace.name).agent_status()

    def volume_names(self, name: str) -> builtins.list[str]:
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

    # Ways in (``AccessBackend``): through the server -----------------------------------
    def ide_url(self, name: str) -> str:
        """The address the server gives for the IDE (through the server itself)."""
        model = self.client.workspaces.get(name)
        url = model.attrs.get("ide_url")
        if not url:
            raise Conflict(f"workspace {name} is {model.state}; start it with `dev8 start {name}`")
        return str(url)

    def ssh_stream(self, workspace: Workspace) -> ByteStream:
        return self.client.open_tunnel(workspace.name, SSHD_PORT)

    def port_opener(self, workspace: Workspace) -> PortOpener:
        return lambda port: self.client.open_tunnel(workspace.name, port)

    def ssh_destination(self, workspace: Workspace, dev8_argv: Sequence[str]) -> builtins.list[str]:
        from dev8.cli.ssh import proxy_command

        command = proxy_command(dev8_argv, workspace.name)
        return ["-o", f"ProxyCommand={command}", f"dev8@dev8.{workspace.name}"]

    def authorize_ssh_keys(self, public_keys: str) -> bool:
        """Add the keys the account lacks: the server gives a member's keys to every
        workspace it creates for them."""
        me = self.client.users.me()
        known = me.attrs.get("ssh_keys", "").splitlines()
        missing = [key for key in public_keys.splitlines() if key.strip() and key not in known]
        if missing:
            me.update(ssh_keys="\n".join([*known, *missing]) + "\n")
        return bool(missing)

    # Changes ----------------------------------------------------------------------------
    def _wait(self, change: Change, progress: Progress) -> Workspace:
        return change.wait(progress).to_workspace()

    def create(self, request: CreateRequest, progress: Progress = quiet) -> Workspace:
        return self._wait(self._create(request, start=False), progress)

    def up(self, request: CreateRequest, progress: Progress = quiet) -> Workspace:
        try:
            model = self.client.workspaces.get(request.name)
        except NotFound:
            return self._wait(self._create(request, start=True), progress)
        return self._wait(model.start(), progress)

    def _create(self, request: CreateRequest, start: bool) -> Change:
        password = request.code_server_password or secrets.token_urlsafe(18)
        change = self.client.workspaces.create(
            request.name,
            image=request.image or None,  # the server's default (its DEV8_IMAGES)
            cpus=request.resources.cpus,
            memory_mb=request.resources.memory_mb,
            env=request.env,
            secrets=request.secrets,
            ide_password=password,
            idle_timeout_s=request.idle_timeout_s,
            dotfiles_repo=request.dotfiles_repo,
            quotas=request.quotas or None,
            ide_port=request.host_ports.get("ide"),
            ssh_port=request.host_ports.get("ssh"),
            start=start,
        )
        _save_password(self._password_key(change.workspace.to_workspace()), password)
        return change

    def start(self, name: str, progress: Progress = quiet, wait: bool = True) -> Workspace:
        change = self.client.workspaces.get(name).start()
        return self._wait(change, progress) if wait else change.workspace.to_workspace()

    def stop(self, name: str, progress: Progress = quiet) -> Workspace:
        return self._wait(self.client.workspaces.get(name).stop(), progress)

    def restart(self, name: str, progress: Progress = quiet) -> Workspace:
        return self._wait(self.client.workspaces.get(name).restart(), progress)

    def rebuild(self, name: str, image: str | None = None, progress: Progress = quiet) -> Workspace:
        return self._wait(self.client.workspaces.get(name).rebuild(image), progress)

    def remove(
        self, name: str, purge: bool = False, progress: Progress = quiet
    ) -> builtins.list[str]:
        change = self._model(name).remove(purge=purge)
        for operation in change.operations:
            operation.wait(progress)
        return list(change.operations[-1].attrs["outcome"].get("destroyed_volumes", []))
