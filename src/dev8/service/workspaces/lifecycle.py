"""The lifecycle operations: create, up, start, stop, restart, rebuild, update, remove.

Each public method runs its operation now, under the workspace's lock, recorded; its work is
the ``_do_<action>`` method that the server's reconciler also runs for a queued operation
(see ``actions``)."""

from __future__ import annotations

import secrets

from dev8.core.dotfiles import validate_dotfiles_repo
from dev8.core.environment import AGENT_TOKEN, IDE_PASSWORD, check_env_name
from dev8.core.errors import AlreadyExists, ProviderError
from dev8.core.naming import new_workspace_id, validate_name
from dev8.core.states import ContainerState, DesiredState, ObservedState
from dev8.core.workspace import Action, CreateRequest, Workspace
from dev8.providers.base import SyncedDisk
from dev8.service.agent_client import AgentClient
from dev8.service.workspaces.base import HEALTHY_TIMEOUT_S, Progress, quiet
from dev8.service.workspaces.containers import Containers


class Lifecycle(Containers):
    def create(self, request: CreateRequest, progress: Progress = quiet) -> Workspace:
        """Create a workspace (volumes and a stopped container).

        A removed workspace with the same name is brought back on its surviving volumes. A
        failed create leaves nothing behind: no container, no new volumes, no record.
        """
        workspace, previous = self.prepare_create(request)
        if previous is not None:
            progress(f"adopting the volumes of the removed workspace {request.name}")
            self.store.set_desired(workspace, DesiredState.STOPPED)
            self.store.save_status(workspace)
        else:
            self.store.add(workspace)
        try:
            with self._operation(workspace, Action.CREATE, progress) as report:
                self._do_create(workspace, report)
        except BaseException:
            if previous is None:
                self._undo_new(workspace)
            raise
        return workspace

    def prepare_create(self, request: CreateRequest) -> tuple[Workspace, Workspace | None]:
        """Check ``request`` and resolve its image; returns the workspace to store and the
        removed one it adopts, if any. Nothing is written."""
        validate_name(request.name)
        for key in [*request.env, *request.secrets]:
            check_env_name(key)
        if request.dotfiles_repo is not None:
            request.dotfiles_repo = validate_dotfiles_repo(request.dotfiles_repo)
        previous = self.store.find(self.owner, request.name)
        if previous is not None and previous.desired_state is not DesiredState.REMOVED:
            raise AlreadyExists(
                f"workspace {request.name!r} already exists; `dev8 up {request.name}` starts it"
            )
        request.image = request.image or self.default_image
        image_id = self.provider.image_id(request.image)
        if previous is None:
            return self._new_workspace(request, image_id), None
        previous.image_ref, previous.image_id = request.image, image_id
        return previous, previous

    def _new_workspace(self, request: CreateRequest, image_id: str) -> Workspace:
        internal = {
            AGENT_TOKEN: secrets.token_urlsafe(32),
            IDE_PASSWORD: request.code_server_password or secrets.token_urlsafe(18),
        }
        return Workspace(
            id=new_workspace_id(),
            name=request.name,
            owner=self.owner,
            image_ref=request.image,
            image_id=image_id,
            resources=request.resources,
            env=dict(request.env),
            secrets={**request.secrets, **internal},
            desired_state=DesiredState.STOPPED,
            observed_state=ObservedState.CREATING,
            host_ports=dict(request.host_ports),
            fixed_ports=dict(request.host_ports),
            quotas=dict(request.quotas),
            idle_timeout_s=request.idle_timeout_s,
            dotfiles_repo=request.dotfiles_repo,
        )

    def _do_create(self, workspace: Workspace, progress: Progress) -> None:
        progress("creating volumes and container")
        self._create_container(workspace)
        self.set_status(workspace, ObservedState.STOPPED)

    def up(
        self, request: CreateRequest, progress: Progress = quiet, timeout: float = HEALTHY_TIMEOUT_S
    ) -> Workspace:
        """Create ``request.name`` if needed, start it, and wait until it is healthy."""
        existing = self.store.find(self.owner, request.name)
        created_now = existing is None
        if existing is None or existing.desired_state is DesiredState.REMOVED:
            self.create(request, progress)
        try:
            return self.start(request.name, progress, timeout=timeout)
        except BaseException:
            # A brand-new workspace that never came up is not left half-created.
            if created_now:
                workspace = self.store.find(self.owner, request.name)
                if workspace is not None:
                    self._undo_new(workspace)
            raise

    def start(
        self,
        name: str,
        progress: Progress = quiet,
        wait: bool = True,
        timeout: float = HEALTHY_TIMEOUT_S,
    ) -> Workspace:
        workspace = self.find(name)
        with self._operation(workspace, Action.START, progress) as report:
            self._do_start(workspace, report, wait, timeout)
        return workspace

    def _do_start(
        self,
        workspace: Workspace,
        progress: Progress,
        wait: bool = True,
        timeout: float = HEALTHY_TIMEOUT_S,
    ) -> None:
        self._ensure_container(workspace, progress)
        self._start_container(workspace, progress)
        if wait:
            self.wait_until_healthy(workspace, progress, timeout)

    def stop(self, name: str, progress: Progress = quiet) -> Workspace:
        workspace = self.find(name)
        with self._operation(workspace, Action.STOP, progress) as report:
            self._do_stop(workspace, report)
        return workspace

    def _do_stop(self, workspace: Workspace, progress: Progress) -> None:
        if isinstance(self.provider, SyncedDisk):
            self._last_sync(workspace, self.provider.sync_before_stop_s, progress)
        progress("stopping the container")
        runtime = self.provider.stop(workspace.id)
        self.set_status(workspace, ObservedState.STOPPED, "", runtime)

    def _last_sync(self, workspace: Workspace, timeout: float, progress: Progress) -> None:
        """The agent saves the home and /workspace before the container and its disk go. A
        failure does not hold the stop: the agent's own sync at SIGTERM tries again."""
        runtime = self.provider.status(workspace.id)
        if not runtime.running:
            return
        progress("saving /home/dev8 and /workspace to their storage")
        try:
            AgentClient(timeout=timeout).sync(runtime.agent_url, workspace.secrets[AGENT_TOKEN])
        except (ProviderError, KeyError) as exc:
            reason = exc.message if isinstance(exc, ProviderError) else "no agent token"
            progress(f"warning: {reason}; the agent's own sync at the stop tries again")

    def restart(
        self,
        name: str,
        progress: Progress = quiet,
        wait: bool = True,
        timeout: float = HEALTHY_TIMEOUT_S,
    ) -> Workspace:
        workspace = self.find(name)
        with self._operation(workspace, Action.RESTART, progress) as report:
            self._do_restart(workspace, report, wait, timeout)
        return workspace

    def _do_restart(
        self,
        workspace: Workspace,
        progress: Progress,
        wait: bool = True,
        timeout: float = HEALTHY_TIMEOUT_S,
    ) -> None:
        if self.provider.status(workspace.id).running:
            progress("restarting the container")
            runtime = self.provider.restart(workspace.id)
            self.set_status(workspace, ObservedState.STARTING, "", runtime)
        else:
            self._ensure_container(workspace, progress)
            self._start_container(workspace, progress)
        if wait:
            self.wait_until_healthy(workspace, progress, timeout)

    def rebuild(
        self,
        name: str,
        image: str | None = None,
        progress: Progress = quiet,
        wait: bool = True,
        timeout: float = HEALTHY_TIMEOUT_S,
    ) -> Workspace:
        """Replace the container with a new one from ``image`` (default: the workspace's image
        reference, resolved again) on the same volumes."""
        workspace = self.find(name)
        reference = image or workspace.image_ref
        image_id = self.provider.image_id(reference)
        with self._operation(workspace, Action.REBUILD, progress) as report:
            self._do_rebuild(workspace, reference, image_id, report, wait, timeout)
        return workspace

    def _do_rebuild(
        self,
        workspace: Workspace,
        reference: str,
        image_id: str,
        progress: Progress,
        wait: bool = True,
        timeout: float = HEALTHY_TIMEOUT_S,
    ) -> None:
        self._recreate(workspace, reference, image_id, progress)
        self._start_container(workspace, progress)
        if wait:
            self.wait_until_healthy(workspace, progress, timeout)

    def _do_update(
        self, workspace: Workspace, progress: Progress, timeout: float = HEALTHY_TIMEOUT_S
    ) -> None:
        """Apply changed settings (resources, IDE password): a container only gets them when
        it is made, so an existing one is replaced on the same volumes, and started again
        if the workspace should run."""
        if self.provider.status(workspace.id).state is ContainerState.MISSING:
            progress("no container yet; the new settings apply when it is created")
            return
        self._recreate(workspace, workspace.image_ref, workspace.image_id, progress)
        if workspace.desired_state is DesiredState.RUNNING:
            self._start_container(workspace, progress)
            self.wait_until_healthy(workspace, progress, timeout)
        else:
            runtime = self.provider.status(workspace.id)
            self.set_status(workspace, ObservedState.STOPPED, "", runtime)

    def remove(self, name: str, purge: bool = False, progress: Progress = quiet) -> list[str]:
        """Remove the container; with ``purge`` also the volumes and the record. Returns the
        names of the volumes destroyed."""
        workspace = self.find_known(name)
        action = Action.PURGE if purge else Action.REMOVE
        with self._operation(workspace, action, progress) as report:
            destroyed = self._do_remove(workspace, purge, report)
        if purge:
            self.store.delete(workspace.id)
        return destroyed

    def _do_remove(self, workspace: Workspace, purge: bool, progress: Progress) -> list[str]:
        progress("removing the container")
        self.provider.remove(workspace.id)
        self.store.set_desired(workspace, DesiredState.REMOVED)
        workspace.ports, workspace.container_id, workspace.agent_url = {}, None, None
        self.set_status(workspace, ObservedState.REMOVED, "container removed; volumes kept")
        if not purge:
            return []
        progress("destroying the volumes")
        return self.provider.remove_volumes(workspace.id)
