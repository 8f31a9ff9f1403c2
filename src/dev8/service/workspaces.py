"""The workspace operations: create, start, stop, restart, rebuild, remove, and queries.

Every mutating operation takes the workspace's lock, is recorded as an operation (who, what,
when, result, duration), and leaves the stored state truthful whether it succeeds or fails.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from dev8.core.errors import (
    AlreadyExists,
    Conflict,
    Dev8Error,
    EngineUnavailable,
    ImageNotFound,
    InvalidInput,
    NotFound,
    OperationTimeout,
)
from dev8.core.naming import new_workspace_id, validate_name
from dev8.core.quotas import quota_environment
from dev8.core.resources import Resources
from dev8.core.states import DesiredState, ObservedState
from dev8.core.workspace import Operation, Workspace
from dev8.imagebuild.layers import workspace_image
from dev8.providers.base import Provider, RuntimeStatus, WorkspaceSpec
from dev8.service.agent_client import AgentClient
from dev8.service.observe import derive_observed
from dev8.store.store import Store

Progress = Callable[[str], None]
HEALTHY_TIMEOUT_S = 120.0
PACKAGES_TOOL = ["/opt/dev8/venv/bin/python", "-m", "dev8.agent.packages"]
RESERVED_ENV = {"DEV8_AGENT_TOKEN", "CODE_SERVER_PASSWORD", "ENVIRONMENT_ID", "SSH_PUBLIC_KEY"}


def _quiet(_message: str) -> None:
    pass


@dataclass
class CreateRequest:
    name: str
    image: str = field(default_factory=workspace_image)
    resources: Resources = field(default_factory=lambda: Resources(2, 4096))
    env: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    code_server_password: str | None = None
    host_ports: dict[str, int] = field(default_factory=dict)  # role -> fixed host port
    quotas: dict[str, int] = field(default_factory=dict)  # volume role -> bytes (unset: default)


class WorkspaceService:
    def __init__(
        self,
        *,
        store: Store,
        provider: Provider,
        owner: str,
        authorized_keys: Callable[[], str] = lambda: "",
        agent: AgentClient | None = None,
    ) -> None:
        self.store = store
        self.provider = provider
        self.owner = owner
        self.authorized_keys = authorized_keys
        self.agent = agent or AgentClient()

    # Queries ---------------------------------------------------------------------------
    def find(self, name: str) -> Workspace:
        """The live workspace ``name``, without asking the engine."""
        workspace = self.store.find(self.owner, name)
        if workspace is None or workspace.desired_state is DesiredState.REMOVED:
            raise NotFound(f"no workspace named {name!r}; `dev8 ls` lists them")
        return workspace

    def get(self, name: str) -> Workspace:
        return self.observe(self.find(name))

    def list(self) -> list[Workspace]:
        return [self.observe(workspace) for workspace in self.store.list(self.owner)]

    def history(self, name: str, limit: int = 50) -> list[Operation]:
        workspace = self.store.find(self.owner, name)
        if workspace is None:
            raise NotFound(f"no workspace named {name!r}")
        return self.store.operations(workspace.id, limit)

    def observe(self, workspace: Workspace) -> Workspace:
        """Ask the engine and the agent, record what they say, return the result."""
        try:
            runtime = self.provider.status(workspace.id)
        except EngineUnavailable as exc:
            workspace.observed_state, workspace.status_message = ObservedState.UNKNOWN, exc.message
            return workspace
        health = self.agent.health(_agent_url(runtime)) if runtime.state == "running" else None
        state, message = derive_observed(workspace.desired_state, runtime, health)
        return self._record(workspace, runtime, state, message)

    def _record(
        self, workspace: Workspace, runtime: RuntimeStatus, state: ObservedState, message: str
    ) -> Workspace:
        ports = runtime.ports if runtime.state == "running" else {}
        changed = (
            workspace.observed_state,
            workspace.status_message,
            workspace.ports,
            workspace.container_id,
        ) != (state, message, ports, runtime.container_id)
        workspace.observed_state, workspace.status_message = state, message
        workspace.ports, workspace.container_id = ports, runtime.container_id
        if runtime.host_ports and runtime.host_ports != workspace.host_ports:
            workspace.host_ports, changed = dict(runtime.host_ports), True
        return self.store.save(workspace) if changed else workspace

    # Operations ------------------------------------------------------------------------
    @contextlib.contextmanager
    def _operation(self, workspace: Workspace, action: str) -> Iterator[Operation]:
        with self.store.lock(workspace.id):
            operation = self.store.start_operation(workspace.id, action, self.owner)
            try:
                yield operation
            except BaseException as exc:
                message = (
                    exc.message
                    if isinstance(exc, Dev8Error)
                    else ("interrupted" if isinstance(exc, KeyboardInterrupt) else repr(exc))
                )
                self.store.finish_operation(operation.id, "failed", message)
                with contextlib.suppress(Dev8Error, NotFound):
                    current = self.store.get(workspace.id)
                    current.observed_state, current.status_message = (
                        ObservedState.FAILED,
                        (f"{action} failed: {message}"),
                    )
                    self.store.save(current)
                raise
            self.store.finish_operation(operation.id, "succeeded")

    def create(self, request: CreateRequest, progress: Progress = _quiet) -> Workspace:
        """Create a workspace (volumes and a stopped container).

        A removed workspace with the same name is brought back on its surviving volumes. A
        failed create leaves nothing behind: no container, no new volumes, no record.
        """
        validate_name(request.name)
        _check_env(request.env, request.secrets)
        previous = self.store.find(self.owner, request.name)
        if previous is not None and previous.desired_state is not DesiredState.REMOVED:
            raise AlreadyExists(
                f"workspace {request.name!r} already exists; `dev8 up {request.name}` starts it"
            )
        image_id = self.provider.image_id(request.image)
        workspace = previous or self._new_workspace(request, image_id)
        if previous is not None:
            progress(f"adopting the volumes of the removed workspace {request.name}")
            workspace.image_ref, workspace.image_id = request.image, image_id
            workspace.desired_state = DesiredState.STOPPED
            self.store.save(workspace)
        else:
            self.store.add(workspace)
        try:
            with self._operation(workspace, "create"):
                progress("creating volumes and container")
                self._create_container(workspace)
                workspace.observed_state = ObservedState.STOPPED
                self.store.save(workspace)
        except BaseException:
            if previous is None:
                self._undo_new(workspace)
            raise
        return workspace

    def _new_workspace(self, request: CreateRequest, image_id: str) -> Workspace:
        internal = {
            "DEV8_AGENT_TOKEN": secrets.token_urlsafe(32),
            "CODE_SERVER_PASSWORD": request.code_server_password or secrets.token_urlsafe(18),
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
        )

    def _undo_new(self, workspace: Workspace) -> None:
        """Remove every trace of a workspace whose creation did not complete."""
        with contextlib.suppress(Dev8Error):
            self.provider.remove(workspace.id)
            self.provider.remove_volumes(workspace.id)
        self.store.delete(workspace.id)

    def _spec(self, workspace: Workspace) -> WorkspaceSpec:
        env = {**workspace.env, **workspace.secrets, **quota_environment(workspace.quotas)}
        keys = self.authorized_keys()
        if keys:
            env["SSH_PUBLIC_KEY"] = keys
        return WorkspaceSpec(
            workspace_id=workspace.id,
            name=workspace.name,
            owner=workspace.owner,
            image=workspace.image_id,
            resources=workspace.resources,
            env=env,
            host_ports=workspace.host_ports,
        )

    def up(
        self,
        request: CreateRequest,
        progress: Progress = _quiet,
        timeout: float = HEALTHY_TIMEOUT_S,
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
        progress: Progress = _quiet,
        wait: bool = True,
        timeout: float = HEALTHY_TIMEOUT_S,
    ) -> Workspace:
        workspace = self.find(name)
        with self._operation(workspace, "start"):
            workspace.desired_state = DesiredState.RUNNING
            self.store.save(workspace)
            self._ensure_container(workspace, progress)
            self._start_container(workspace, progress)
            if wait:
                self.wait_until_healthy(workspace, progress, timeout)
        return workspace

    def _ensure_container(self, workspace: Workspace, progress: Progress) -> None:
        if self.provider.status(workspace.id).state != "missing":
            return
        progress("the container is missing; recreating it on the same volumes")
        try:
            self._create_container(workspace)
        except ImageNotFound:
            raise ImageNotFound(
                f"workspace {workspace.name} was made from {workspace.image_ref} "
                f"({workspace.image_id[7:19]}), which is no longer on this engine; "
                f"`dev8 rebuild {workspace.name}` recreates it from {workspace.image_ref} "
                "on the same volumes"
            ) from None

    def _create_container(self, workspace: Workspace) -> None:
        runtime = self.provider.create(self._spec(workspace))
        workspace.host_ports = dict(runtime.host_ports) or workspace.host_ports
        workspace.container_id = runtime.container_id
        self.store.save(workspace)

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
        self._record(workspace, runtime, ObservedState.STARTING, "")

    def stop(self, name: str, progress: Progress = _quiet) -> Workspace:
        workspace = self.find(name)
        with self._operation(workspace, "stop"):
            workspace.desired_state = DesiredState.STOPPED
            self.store.save(workspace)
            progress("stopping the container")
            runtime = self.provider.stop(workspace.id)
            self._record(workspace, runtime, ObservedState.STOPPED, "")
        return workspace

    def restart(
        self,
        name: str,
        progress: Progress = _quiet,
        wait: bool = True,
        timeout: float = HEALTHY_TIMEOUT_S,
    ) -> Workspace:
        workspace = self.find(name)
        with self._operation(workspace, "restart"):
            workspace.desired_state = DesiredState.RUNNING
            self.store.save(workspace)
            if self.provider.status(workspace.id).state == "running":
                progress("restarting the container")
                self._record(
                    workspace, self.provider.restart(workspace.id), ObservedState.STARTING, ""
                )
            else:
                self._ensure_container(workspace, progress)
                self._start_container(workspace, progress)
            if wait:
                self.wait_until_healthy(workspace, progress, timeout)
        return workspace

    def rebuild(
        self,
        name: str,
        image: str | None = None,
        progress: Progress = _quiet,
        wait: bool = True,
        timeout: float = HEALTHY_TIMEOUT_S,
    ) -> Workspace:
        """Replace the container with a new one from ``image`` (default: the workspace's image
        reference, resolved again) on the same volumes."""
        workspace = self.find(name)
        reference = image or workspace.image_ref
        image_id = self.provider.image_id(reference)
        with self._operation(workspace, "rebuild"):
            workspace.desired_state = DesiredState.RUNNING
            self.store.save(workspace)
            self._record_packages(workspace, progress)
            progress("removing the old container (volumes stay)")
            self.provider.remove(workspace.id)
            workspace.image_ref, workspace.image_id = reference, image_id
            progress(f"creating a new container from {reference} ({image_id[7:19]})")
            self._create_container(workspace)
            self._start_container(workspace, progress)
            if wait:
                self.wait_until_healthy(workspace, progress, timeout)
        return workspace

    def remove(self, name: str, purge: bool = False, progress: Progress = _quiet) -> list[str]:
        """Remove the container; with ``purge`` also the volumes and the record. Returns the
        names of the volumes destroyed."""
        workspace = self.store.find(self.owner, name)
        if workspace is None:
            raise NotFound(f"no workspace named {name!r}; `dev8 ls` lists them")
        destroyed: list[str] = []
        with self._operation(workspace, "purge" if purge else "remove"):
            progress("removing the container")
            self.provider.remove(workspace.id)
            workspace.desired_state, workspace.observed_state = (
                DesiredState.REMOVED,
                ObservedState.REMOVED,
            )
            workspace.ports, workspace.container_id = {}, None
            workspace.status_message = "container removed; volumes kept"
            self.store.save(workspace)
            if purge:
                progress("destroying the volumes")
                destroyed = self.provider.remove_volumes(workspace.id)
        if purge:
            self.store.delete(workspace.id)
        return destroyed

    # System packages ---------------------------------------------------------------
    def _record_packages(self, workspace: Workspace, progress: Progress) -> None:
        """Record installed packages in the old container just before it goes away."""
        if self.provider.status(workspace.id).state != "running":
            return
        progress("recording installed system packages")
        try:
            result = self.provider.exec(workspace.id, [*PACKAGES_TOOL, "record"], user="root")
        except Dev8Error as exc:
            progress(f"could not record packages ({exc.message}); using the last record")
            return
        if result.exit_code != 0:
            progress("could not record packages; using the last record")

    def packages(self, name: str, forget: list[str] | None = None) -> dict:
        """The recorded packages and the last restore report; ``forget`` drops packages."""
        workspace = self.get(name)
        if workspace.observed_state not in (
            ObservedState.RUNNING,
            ObservedState.STARTING,
            ObservedState.UNHEALTHY,
        ):
            raise Conflict(
                f"workspace {name} is {workspace.observed_state.value}; "
                f"start it with `dev8 start {name}`"
            )
        if forget:
            self._packages_tool(workspace, "forget", *forget)
        return self._packages_tool(workspace, "show")

    def _packages_tool(self, workspace: Workspace, *args: str) -> dict:
        result = self.provider.exec(workspace.id, [*PACKAGES_TOOL, *args], user="root")
        if result.exit_code != 0:
            raise Dev8Error(
                f"the package tool in {workspace.name} failed: "
                f"{result.output.decode(errors='replace').strip()[-200:]}"
            )
        return json.loads(result.output)

    def volume_names(self, name: str) -> list[str]:
        workspace = self.store.find(self.owner, name)
        if workspace is None:
            raise NotFound(f"no workspace named {name!r}")
        return [volume.name for volume in self.provider.volumes(workspace.id)]

    # Waiting ---------------------------------------------------------------------------
    def wait_until_healthy(
        self, workspace: Workspace, progress: Progress = _quiet, timeout: float = HEALTHY_TIMEOUT_S
    ) -> Workspace:
        """Poll the agent until it reports healthy; fail fast if the container exits."""
        deadline = time.monotonic() + timeout
        last_reason = ""
        agent_url = workspace.agent_url
        next_engine_check = time.monotonic() + 1.0
        restarts_at_start: int | None = None
        while time.monotonic() < deadline:
            reason = self.agent.health(agent_url)
            if reason is None:
                self._record(
                    workspace, self.provider.status(workspace.id), ObservedState.RUNNING, ""
                )
                return workspace
            if reason != last_reason:
                progress(f"waiting for the workspace: {reason}")
                last_reason = reason
            # Asking the engine costs more than asking the agent; once a second is enough to
            # notice a container that exited instead of becoming healthy.
            if time.monotonic() >= next_engine_check:
                next_engine_check = time.monotonic() + 1.0
                runtime = self.provider.status(workspace.id)
                if restarts_at_start is None:
                    restarts_at_start = runtime.restart_count
                if runtime.restart_count > restarts_at_start + 1:
                    raise Dev8Error(
                        f"workspace {workspace.name} keeps crashing while starting (exit code "
                        f"{runtime.exit_code}); see `dev8 logs {workspace.name}`"
                    )
                if runtime.state not in ("running", "restarting"):
                    _, message = derive_observed(workspace.desired_state, runtime, reason)
                    raise Dev8Error(
                        f"workspace {workspace.name} stopped while starting: "
                        f"{message or runtime.state}; see `dev8 logs {workspace.name}`"
                    )
                agent_url = _agent_url(runtime) or agent_url
            time.sleep(0.05)
        raise OperationTimeout(
            f"workspace {workspace.name} was not healthy after {timeout:.0f} s "
            f"({last_reason}); see `dev8 logs {workspace.name}`"
        )

    def agent_status(self, name: str) -> dict:
        workspace = self.get(name)
        return self.agent.status(workspace.agent_url, workspace.secrets["DEV8_AGENT_TOKEN"])

    # For the services that act on a workspace's volumes (backups, volumes, doctor) -------
    def operation(self, workspace: Workspace, action: str) -> contextlib.AbstractContextManager:
        """Lock ``workspace`` and record ``action`` in its history while the block runs."""
        return self._operation(workspace, action)

    def stop_for(self, workspace: Workspace, why: str, progress: Progress = _quiet) -> bool:
        """Stop the container inside an operation; True if it was running (so the caller
        starts it again with ``resume``)."""
        if self.provider.status(workspace.id).state not in ("running", "restarting"):
            return False
        progress(f"stopping the workspace {why}")
        runtime = self.provider.stop(workspace.id)
        self._record(workspace, runtime, ObservedState.STOPPED, "")
        return True

    def resume(self, workspace: Workspace, progress: Progress = _quiet) -> None:
        """Start again what ``stop_for`` stopped, inside the same operation."""
        self._ensure_container(workspace, progress)
        self._start_container(workspace, progress)
        self.wait_until_healthy(workspace, progress)

    def recreate_container(self, workspace: Workspace, progress: Progress = _quiet) -> None:
        """A new container from the same image on the same volumes (its environment, e.g.
        quotas, is made again), started again if it ran."""
        running = self.stop_for(workspace, "to recreate its container", progress)
        self.provider.remove(workspace.id)
        self._create_container(workspace)
        if running:
            self.resume(workspace, progress)


def _agent_url(runtime: RuntimeStatus) -> str | None:
    port = runtime.ports.get("agent")
    return f"http://127.0.0.1:{port}" if port else None


def _check_env(env: dict[str, str], secret_values: dict[str, str]) -> None:
    for key in [*env, *secret_values]:
        if (
            not key
            or not (key[0].isalpha() or key[0] == "_")
            or not all(c.isalnum() or c == "_" for c in key)
        ):
            raise InvalidInput(f"invalid environment variable name {key!r}")
        if key in RESERVED_ENV:
            raise InvalidInput(f"{key} is set by dev8 and cannot be overridden")
