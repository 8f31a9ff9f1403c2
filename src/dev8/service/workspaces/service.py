"""Reaching into a workspace: running commands, its output, its agent's report, its
volumes, its IDE password."""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Sequence

from dev8.core.environment import AGENT_TOKEN, IDE_PASSWORD
from dev8.core.errors import Conflict, Dev8Error
from dev8.core.states import LIVE, ContainerState
from dev8.core.workspace import Workspace
from dev8.providers.base import ExecResult, InteractiveExec, VolumeInfo
from dev8.service.workspaces.actions import Actions
from dev8.service.workspaces.observation import require_live
from dev8.service.workspaces.packages import packages_tool


class WorkspaceService(Actions):
    """The operations on the workspaces of ``owner``, recorded as done by ``actor`` (the
    owner unless, say, an admin or the server acts on them). Its parts, each a module of
    this package: finding (``base``), recording (``recording``), observing
    (``observation``), containers, the lifecycle, the action table (``actions``), and
    reaching into a workspace (here)."""

    def ping(self) -> None:
        self.provider.ping()

    def records(self) -> builtins.list[Workspace]:
        """The owner's live workspaces as recorded, without asking the engine."""
        return self.store.list(self.owner)

    def ide_password(self, name: str) -> str:
        return self.find(name).secrets[IDE_PASSWORD]

    def logs(self, name: str, follow: bool = False, tail: int | None = None) -> Iterator[bytes]:
        """The container's output; ``Conflict`` when it has no container."""
        workspace = self.find(name)
        if self.provider.status(workspace.id).state is ContainerState.MISSING:
            raise Conflict(f"workspace {workspace.name} has no container")
        return self.provider.logs(workspace.id, follow=follow, tail=tail)

    def agent_status(self, name: str) -> dict:
        return self.agent_status_of(self.get(name))

    def agent_status_of(self, workspace: Workspace) -> dict:
        """What the running workspace's agent reports (services, activity, host keys...);
        ``Conflict`` unless its container is up."""
        require_live(workspace)
        return self.agent.status(workspace.agent_url, workspace.secrets[AGENT_TOKEN])

    def disk_usage(self, workspace: Workspace) -> dict[str, dict]:
        """Each volume role's usage as the running workspace's agent last measured it;
        empty when it does not run or does not answer."""
        if workspace.observed_state not in LIVE:
            return {}
        try:
            return dict(self.agent_status_of(workspace).get("disk") or {})
        except (Dev8Error, KeyError, AttributeError):
            return {}

    def volumes_of(self, workspace: Workspace) -> builtins.list[VolumeInfo]:
        """The workspace's volumes (a removed workspace keeps them until purged)."""
        return self.provider.volumes(workspace.id)

    def volume_names(self, name: str) -> builtins.list[str]:
        return [volume.name for volume in self.volumes_of(self.find_known(name))]

    def packages(self, name: str, forget: builtins.list[str] | None = None) -> dict:
        """The recorded packages and the last restore report; ``forget`` drops packages."""
        workspace = self.get(name)
        require_live(workspace)
        if forget:
            packages_tool(self.provider, workspace, "forget", *forget)
        return packages_tool(self.provider, workspace, "show")

    def exec(self, name: str, argv: Sequence[str], *, root: bool = False) -> ExecResult:
        """Run ``argv`` in the running workspace (as dev8 in /workspace, or root) and wait."""
        workspace = self.get(name)
        require_live(workspace)
        user = "root" if root else "dev8"
        return self.provider.exec(workspace.id, argv, user=user, workdir="/workspace")

    def exec_argv(
        self, name: str, argv: Sequence[str], *, root: bool = False, tty: bool = False
    ) -> builtins.list[str] | None:
        """The local command line that runs ``argv`` attached to this terminal, or None if
        the backend cannot attach one (then ``exec`` runs it without a terminal)."""
        workspace = self.get(name)
        require_live(workspace)
        if not isinstance(self.provider, InteractiveExec):
            return None
        user = "root" if root else "dev8"
        return self.provider.exec_argv(workspace.id, argv, user=user, workdir="/workspace", tty=tty)
