"""Making and starting a workspace's container: its spec from the record, a missing one
made again on the same volumes, new ports when one was taken, a new one from an image."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from dev8.core.dotfiles import DOTFILES_REPO
from dev8.core.environment import LOOPBACK_ONLY
from dev8.core.errors import Conflict, Dev8Error, ImageNotFound, SecretsUnreadable
from dev8.core.images import short_image_id
from dev8.core.quotas import effective_quotas, quota_environment
from dev8.core.states import ACTIVE_CONTAINER, ContainerState, ObservedState
from dev8.core.workspace import Workspace
from dev8.providers.base import PORTS, WorkspaceSpec
from dev8.service.workspaces.base import Progress, quiet
from dev8.service.workspaces.observation import Observing
from dev8.service.workspaces.packages import record_packages


class Containers(Observing):
    def _spec(self, workspace: Workspace) -> WorkspaceSpec:
        if not workspace.secrets_loaded:
            raise SecretsUnreadable(
                f"internal: workspace {workspace.name} was read without its secrets"
            )
        env = {}
        if self.relay:
            # code-server's Ports view opens forwarded ports at the server's addresses; a
            # user's own VSCODE_PROXY_URI wins.
            env["VSCODE_PROXY_URI"] = self.relay.port_template(workspace.owner, workspace.name)
        env.update({**workspace.env, **workspace.secrets, **quota_environment(workspace.quotas)})
        keys = self.authorized_keys() if self.authorized_keys else ""
        if keys:
            env["SSH_PUBLIC_KEY"] = keys
        if self.relay:
            env[LOOPBACK_ONLY] = "1"
        dotfiles = self._dotfiles_repo(workspace)
        if dotfiles:
            env[DOTFILES_REPO] = dotfiles
        return WorkspaceSpec(
            workspace_id=workspace.id,
            name=workspace.name,
            owner=workspace.owner,
            image=workspace.image_id,
            resources=workspace.resources,
            env=env,
            host_ports=workspace.host_ports,
            published=("agent",) if self.relay else tuple(PORTS),
            quotas=effective_quotas(workspace.quotas),
        )

    def _dotfiles_repo(self, workspace: Workspace) -> str:
        """The workspace's own choice, else its owner's account setting."""
        if workspace.dotfiles_repo is not None:
            return workspace.dotfiles_repo
        return self.account_dotfiles()

    def _create_container(self, workspace: Workspace) -> None:
        runtime = self.provider.create(self._spec(workspace))
        workspace.host_ports = dict(runtime.host_ports) or workspace.host_ports
        workspace.container_id = runtime.container_id
        self.store.save_status(workspace)

    def _ensure_container(self, workspace: Workspace, progress: Progress) -> None:
        if self.provider.status(workspace.id).state is not ContainerState.MISSING:
            return
        progress("the container is missing; recreating it on the same volumes")
        try:
            self._create_container(workspace)
        except ImageNotFound as exc:
            raise ImageNotFound(
                f"workspace {workspace.name} was made from {workspace.image_ref} "
                f"({short_image_id(workspace.image_id)}), which is no longer on this engine; "
                f"`dev8 rebuild {workspace.name}` recreates it from {workspace.image_ref} "
                "on the same volumes"
            ) from exc

    def _start_container(self, workspace: Workspace, progress: Progress) -> None:
        """Start; if a port dev8 picked was taken while the workspace was stopped, move the
        workspace to new free ports (ports the user fixed are never changed)."""
        progress("starting the container")
        try:
            runtime = self.provider.start(workspace.id)
        except Conflict:
            if workspace.fixed_ports:
                raise
            progress("a host port was taken by another program; moving to new ports")
            self.provider.remove(workspace.id)
            workspace.host_ports = {}
            self._create_container(workspace)
            runtime = self.provider.start(workspace.id)
        self.set_status(workspace, ObservedState.STARTING, "", runtime)

    def _recreate(
        self, workspace: Workspace, reference: str, image_id: str, progress: Progress
    ) -> None:
        """A new container from ``image_id`` with the workspace's current settings, on the
        same volumes; apt packages are recorded first so that the new one brings them back."""
        if self.provider.status(workspace.id).running:
            record_packages(self.provider, workspace, progress)
        progress("removing the old container (volumes stay)")
        self.provider.remove(workspace.id)
        workspace.image_ref, workspace.image_id = reference, image_id
        progress(f"creating a new container from {reference} ({short_image_id(image_id)})")
        self._create_container(workspace)

    def _undo_new(self, workspace: Workspace) -> None:
        """Remove every trace of a workspace whose creation did not complete."""
        with contextlib.suppress(Dev8Error):
            self.provider.remove(workspace.id)
            self.provider.remove_volumes(workspace.id)
        self.store.delete(workspace.id)

    # For the services that act on a workspace's volumes (backups, volumes, doctor) -------
    def stop_for(self, workspace: Workspace, why: str, progress: Progress = quiet) -> bool:
        """Stop the container inside an operation; True if it was running (so the caller
        starts it again with ``resume``)."""
        if self.provider.status(workspace.id).state not in ACTIVE_CONTAINER:
            return False
        progress(f"stopping the workspace {why}")
        runtime = self.provider.stop(workspace.id)
        self.set_status(workspace, ObservedState.STOPPED, "", runtime)
        return True

    def resume(self, workspace: Workspace, progress: Progress = quiet) -> None:
        """Start again what ``stop_for`` stopped, inside the same operation."""
        self._ensure_container(workspace, progress)
        self._start_container(workspace, progress)
        self.wait_until_healthy(workspace, progress)

    def recreate_container(
        self,
        workspace: Workspace,
        progress: Progress = quiet,
        while_removed: Callable[[], None] = lambda: None,
    ) -> None:
        """A new container from the same image on the same volumes (its environment, e.g.
        quotas, is made again), started again if it ran. ``while_removed`` runs when no
        container mounts the volumes."""
        running = self.stop_for(workspace, "to recreate its container", progress)
        self.provider.remove(workspace.id)
        while_removed()
        self._create_container(workspace)
        if running:
            self.resume(workspace, progress)
