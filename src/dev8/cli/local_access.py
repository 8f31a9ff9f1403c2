"""Local mode's ways into a workspace (``AccessBackend``): the IDE and sshd straight on the
loopback ports the workspace publishes (as fast as it gets), any other port through the
workspace's agent, with its token from the local store."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from dev8.cli.agent_relay import open_agent_relay
from dev8.cli.backends import ByteStream, PortOpener
from dev8.cli.relay import connect_tcp
from dev8.core.environment import AGENT_TOKEN
from dev8.core.errors import Conflict
from dev8.core.workspace import Workspace

if TYPE_CHECKING:
    from dev8.service.workspaces import WorkspaceService

LOOPBACK = "127.0.0.1"


class LocalAccess:
    def __init__(self, service: WorkspaceService) -> None:
        self.service = service

    def ide_url(self, name: str) -> str:
        url = self._live(self.service.get(name)).ide_url
        if url is None:
            raise Conflict(f"workspace {name} publishes no IDE port; run `dev8 restart {name}`")
        return url

    def ssh_stream(self, workspace: Workspace) -> ByteStream:
        return connect_tcp(LOOPBACK, self._port(workspace, "ssh"))

    def port_opener(self, workspace: Workspace) -> PortOpener:
        self._live(workspace)
        agent_url, token = workspace.agent_url, workspace.secrets.get(AGENT_TOKEN, "")
        if not agent_url:
            raise Conflict(f"workspace {workspace.name} is starting; its agent has no address")
        return lambda port: open_agent_relay(agent_url, token, port)

    def ssh_destination(self, workspace: Workspace, dev8_argv: Sequence[str]) -> list[str]:
        return ["-p", str(self._port(workspace, "ssh")), f"dev8@{LOOPBACK}"]

    def authorize_ssh_keys(self, public_keys: str) -> bool:
        """Nothing to do: every new container gets the keys of this machine's user."""
        return False

    def _live(self, workspace: Workspace) -> Workspace:
        from dev8.service.workspaces import require_live

        require_live(workspace)
        return workspace

    def _port(self, workspace: Workspace, role: str) -> int:
        port = self._live(workspace).ports.get(role)
        if port is None:
            name = workspace.name
            raise Conflict(f"workspace {name} publishes no {role} port; run `dev8 restart {name}`")
        return port
