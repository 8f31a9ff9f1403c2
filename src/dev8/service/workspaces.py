"""The workspace operations: create, start, stop, restart, rebuild, update, remove, queries.

Every mutating operation takes the workspace's lock, is recorded as an operation (who, what,
when, result, duration, and its progress messages as events), and leaves the stored state
truthful whether it succeeds or fails.

Each operation's work is one ``_do_<action>`` method. The CLI's local mode runs it at once
(``start``, ``stop``...); the server records the request and its reconciler runs the same
method later through ``run`` (see ``dev8.service.operations``).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

from dev8.core.environment import AGENT_TOKEN, IDE_PASSWORD, check_env_name
from dev8.core.errors import (
    AlreadyExists,
    CommandFailed,
    Conflict,
    Dev8Error,
    EngineUnavailable,
    ImageNotFound,
    InvalidInput,
    NotFound,
    OperationAbandoned,
    OperationTimeout,
    ProviderError,
    SecretsUnreadable,
    WorkspaceCrashed,
)
from dev8.core.images import short_image_id, workspace_image
from dev8.core.naming import new_workspace_id, validate_name
from dev8.core.quotas import quota_environment
from dev8.core.resources import Resources
from dev8.core.states import ACTIVE_CONTAINER, LIVE, ContainerState, DesiredState, ObservedState
from dev8.core.workspace import FAILED, SUCCEEDED, Operation, Workspace
from dev8.providers.base import (
    ExecResult,
    InteractiveExec,
    Provider,
    RuntimeStatus,
    VolumeInfo,
    WorkspaceSpec,
)
from dev8.service.agent_client import AgentClient
from dev8.service.observe import derive_observed
from dev8.store.store import Store, utcnow

Progress = Callable[[str], None]
HEALTHY_TIMEOUT_S = 120.0
PACKAGES_TOOL = ["/opt/dev8/venv/bin/python", "-m", "dev8.agent.packages"]


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
    idle_timeout_s: int | None = None  # None: the server's default; 0: never stop when idle


# A queued action's work: (service, workspace, the operation's params, progress) -> outcome.
ActionHandler = Callable[["WorkspaceService", Workspace, dict, Progress], dict | None]


@dataclass
class Observation:
    workspace: Workspace
    runtime: RuntimeStatus
    activity: datetime | None = None  # when the agent last saw someone, if it runs


class WorkspaceService:
    """The operations on the workspaces of ``owner``, recorded as done by ``actor`` (the
    owner unless, say, an admin or the server acts on them)."""

    def __init__(
        self,
        *,
        store: Store,
        provider: Provider,
        owner: str,
        authorized_keys: Callable[[], str] = lambda: "",
        agent: AgentClient | None = None,
        actor: str | None = None,
        handlers: Mapping[str, ActionHandler] | None = None,
    ) -> None:
        self.store = store
        self.provider = provider
        self.owner = owner
        self.actor = actor or owner
        self.authorized_keys = authorized_keys
        self.agent = agent or AgentClient()
        # Queued actions beyond the lifecycle ones (the server's backups and snapshots).
        self.handlers = dict(handlers or {})
        self._running: Operation | None = None  # the queued operation ``run`` is carrying out

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
        health = self.agent.health(runtime.agent_url) if runtime.running else None
        state, message = derive_observed(workspace.desired_state, runtime, health)
        return self._record(workspace, runtime, state, message)

    def observe_activity(
        self, workspace: Workspace, runtime: RuntimeStatus | None = None, keep_failure: bool = True
    ) -> Observation:
        """Like ``observe`` (``runtime`` if the caller already knows it), and for a running
        workspace also when its agent last saw someone (SSH, IDE, code-server's heartbeat).
        A recorded failure stays shown until the workspace runs healthy again
        (``keep_failure``), so that its reason is not lost."""
        try:
            runtime = runtime or self.provider.status(workspace.id)
        except EngineUnavailable as exc:
            workspace.observed_state, workspace.status_message = ObservedState.UNKNOWN, exc.message
            return Observation(workspace, RuntimeStatus(ContainerState.UNKNOWN))
        health, activity = None, None
        if runtime.running:
            try:
                status = self.agent.status(runtime.agent_url, workspace.secrets[AGENT_TOKEN])
                health, activity = status.get("health"), last_activity(status)
            except (ProviderError, KeyError, ValueError, TypeError):
                health = "the agent is not answering"
        state, message = derive_observed(workspace.desired_state, runtime, health)
        failed = keep_failure and workspace.observed_state is ObservedState.FAILED
        if failed and state is not ObservedState.RUNNING:
            state, message = ObservedState.FAILED, workspace.status_message
        return Observation(self._record(workspace, runtime, state, message), runtime, activity)

    def _record(
        self, workspace: Workspace, runtime: RuntimeStatus, state: ObservedState, message: str
    ) -> Workspace:
        ports = runtime.ports if runtime.running else {}
        changed = (
            workspace.observed_state,
            workspace.status_message,
            workspace.ports,
            workspace.container_id,
            workspace.agent_url,
        ) != (state, message, ports, runtime.container_id, runtime.agent_url)
        workspace.observed_state, workspace.status_message = state, message
        workspace.ports, workspace.container_id = ports, runtime.container_id
        workspace.agent_url = runtime.agent_url
        if runtime.host_ports and runtime.host_ports != workspace.host_ports:
            workspace.host_ports, changed = dict(runtime.host_ports), True
        return self.store.save_status(workspace) if changed else workspace

    # Recording operations ----------------------------------------------------------------
    @contextlib.contextmanager
    def _operation(
        self, workspace: Workspace, action: str, progress: Progress = _quiet
    ) -> Iterator[Progress]:
        """Run the block as the operation ``action``, now, under the workspace's lock."""
        with self.store.lock(workspace.id):
            operation = self.store.start_operation(workspace, action, self.actor)
            with self.recorded(operation, progress) as report:
                yield report

    @contextlib.contextmanager
    def recorded(self, operation: Operation, progress: Progress = _quiet) -> Iterator[Progress]:
        """Finish ``operation`` with the outcome of the block, which gets a progress callback
        that also records each message as an event. A failure marks the workspace failed
        with the reason, and is raised again. The caller holds the workspace's lock."""

        def report(message: str) -> None:
            self.store.add_event(operation.id, message)
            progress(message)

        try:
            yield report
        except BaseException as exc:
            message = (
                exc.message
                if isinstance(exc, Dev8Error)
                else ("interrupted" if isinstance(exc, KeyboardInterrupt) else repr(exc))
            )
            code = exc.code if isinstance(exc, Dev8Error) else Dev8Error.code
            outcome = {**operation.outcome, "error": code}
            self.store.finish_operation(operation.id, FAILED, message, outcome)
            self._mark_failed(operation, message)
            raise
        self.store.finish_operation(operation.id, SUCCEEDED, operation.message, operation.outcome)

    def _mark_failed(self, operation: Operation, message: str) -> None:
        with contextlib.suppress(Dev8Error):
            current = self.store.get(operation.workspace_id or "")
            current.observed_state = ObservedState.FAILED
            current.status_message = f"{operation.action} failed: {message}"
            self.store.save_status(current)

    def run(
        self, operation: Operation, progress: Progress = _quiet, max_attempts: int = 3
    ) -> Workspace | None:
        """Run a recorded operation (queued by the server, claimed by its reconciler, which
        holds the lock). Every action is idempotent, so one interrupted by a crash is simply
        run again, up to ``max_attempts`` times. Returns the workspace, or None once purged."""
        workspace = self.store.get(operation.workspace_id or "")
        self._running = operation
        try:
            with self.recorded(operation, progress) as report:
                if operation.action == "create":
                    with self._undo_failed_create(workspace, operation):
                        self._run_body(workspace, operation, report, max_attempts)
                else:
                    self._run_body(workspace, operation, report, max_attempts)
        finally:
            self._running = None
        if operation.action == "purge":
            self.store.fail_pending(workspace.id, "not run: the workspace was purged")
            self.store.delete(workspace.id)
            return None
        return workspace

    def _run_body(
        self, workspace: Workspace, operation: Operation, progress: Progress, max_attempts: int
    ) -> None:
        if operation.attempts > 1:
            if operation.attempts > max_attempts:
                raise OperationAbandoned(
                    f"interrupted {operation.attempts - 1} times (the server stopped while "
                    "running it); giving up"
                )
            progress(f"resuming after an interruption (attempt {operation.attempts})")
        action, params = operation.action, operation.params
        if action == "create":
            self._do_create(workspace, progress)
        elif action == "start":
            self._do_start(workspace, progress)
        elif action == "stop":
            self._do_stop(workspace, progress)
        elif action == "restart":
            self._do_restart(workspace, progress)
        elif action == "rebuild":
            self._do_rebuild(workspace, params["image_ref"], params["image_id"], progress)
        elif action == "update":
            self._do_update(workspace, progress)
        elif action in ("remove", "purge"):
            destroyed = self._do_remove(workspace, action == "purge", progress)
            operation.outcome = {"destroyed_volumes": destroyed}
        elif action in self.handlers:
            operation.outcome = self.handlers[action](self, workspace, params, progress) or {}
        else:
            raise InvalidInput(f"unknown operation {action!r}")
        if action in ("start", "restart", "rebuild", "update"):
            self.store.touch_activity(workspace.id, utcnow())
        operation.message = str(params.get("message", ""))

    @contextlib.contextmanager
    def _undo_failed_create(self, workspace: Workspace, operation: Operation) -> Iterator[None]:
        """A queued create that fails takes away what it made for a workspace that is new,
        keeps the record (failed, with the reason) and fails what was queued after it."""
        try:
            yield
        except Exception as exc:
            if not operation.params.get("adopted"):
                with contextlib.suppress(Dev8Error):
                    self.provider.remove(workspace.id)
                    self.provider.remove_volumes(workspace.id)
            reason = exc.message if isinstance(exc, Dev8Error) else repr(exc)
            self.store.fail_pending(workspace.id, f"not run: the create failed ({reason})")
            raise

    # Operations ------------------------------------------------------------------------
    def create(self, request: CreateRequest, progress: Progress = _quiet) -> Workspace:
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
            with self._operation(workspace, "create", progress) as report:
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
        previous = self.store.find(self.owner, request.name)
        if previous is not None and previous.desired_state is not DesiredState.REMOVED:
            raise AlreadyExists(
                f"workspace {request.name!r} already exists; `dev8 up {request.name}` starts it"
            )
        image_id = self.provider.image_id(request.image)
        if previous is None:
            return self._new_workspace(request, image_id), None
        previous.image_ref, previous.image_id = request.image, image_id
        return previous, previous

    def _do_create(self, workspace: Workspace, progress: Progress) -> None:
        progress("creating volumes and container")
        self._create_container(workspace)
        workspace.observed_state = ObservedState.STOPPED
        self.store.save_status(workspace)

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
        )

    def _undo_new(self, workspace: Workspace) -> None:
        """Remove every trace of a workspace whose creation did not complete."""
        with contextlib.suppress(Dev8Error):
            self.provider.remove(workspace.id)
            self.provider.remove_volumes(workspace.id)
        self.store.delete(workspace.id)

    def _spec(self, workspace: Workspace) -> WorkspaceSpec:
        if not workspace.secrets_loaded:
            raise SecretsUnreadable(
                f"internal: workspace {workspace.name} was read without its secrets"
            )
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
        with self._operation(workspace, "start", progress) as report:
            self._do_start(workspace, report, wait, timeout)
        return workspace

    def _do_start(
        self,
        workspace: Workspace,
        progress: Progress,
        wait: bool = True,
        timeout: float = HEALTHY_TIMEOUT_S,
    ) -> None:
        self.store.set_desired(workspace, DesiredState.RUNNING)
        self._ensure_container(workspace, progress)
        self._start_container(workspace, progress)
        if wait:
            self.wait_until_healthy(workspace, progress, timeout)

    def _ensure_container(self, workspace: Workspace, progress: Progress) -> None:
        if self.provider.status(workspace.id).state is not ContainerState.MISSING:
            return
        progress("the container is missing; recreating it on the same volumes")
        try:
            self._create_container(workspace)
        except ImageNotFound:
            raise ImageNotFound(
                f"workspace {workspace.name} was made from {workspace.image_ref} "
                f"({short_image_id(workspace.image_id)}), which is no longer on this engine; "
                f"`dev8 rebuild {workspace.name}` recreates it from {workspace.image_ref} "
                "on the same volumes"
            ) from None

    def _create_container(self, workspace: Workspace) -> None:
        runtime = self.provider.create(self._spec(workspace))
        workspace.host_ports = dict(runtime.host_ports) or workspace.host_ports
        workspace.container_id = runtime.container_id
        self.store.save_status(workspace)

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
        with self._operation(workspace, "stop", progress) as report:
            self._do_stop(workspace, report)
        return workspace

    def _do_stop(self, workspace: Workspace, progress: Progress) -> None:
        self.store.set_desired(workspace, DesiredState.STOPPED)
        progress("stopping the container")
        runtime = self.provider.stop(workspace.id)
        self._record(workspace, runtime, ObservedState.STOPPED, "")

    def restart(
        self,
        name: str,
        progress: Progress = _quiet,
        wait: bool = True,
        timeout: float = HEALTHY_TIMEOUT_S,
    ) -> Workspace:
        workspace = self.find(name)
        with self._operation(workspace, "restart", progress) as report:
            self._do_restart(workspace, report, wait, timeout)
        return workspace

    def _do_restart(
        self,
        workspace: Workspace,
        progress: Progress,
        wait: bool = True,
        timeout: float = HEALTHY_TIMEOUT_S,
    ) -> None:
        self.store.set_desired(workspace, DesiredState.RUNNING)
        if self.provider.status(workspace.id).running:
            progress("restarting the container")
            self._record(workspace, self.provider.restart(workspace.id), ObservedState.STARTING, "")
        else:
            self._ensure_container(workspace, progress)
            self._start_container(workspace, progress)
        if wait:
            self.wait_until_healthy(workspace, progress, timeout)

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
        with self._operation(workspace, "rebuild", progress) as report:
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
        self.store.set_desired(workspace, DesiredState.RUNNING)
        self._recreate(workspace, reference, image_id, progress)
        self._start_container(workspace, progress)
        if wait:
            self.wait_until_healthy(workspace, progress, timeout)

    def _recreate(
        self, workspace: Workspace, reference: str, image_id: str, progress: Progress
    ) -> None:
        """A new container from ``image_id`` with the workspace's current settings, on the
        same volumes; apt packages are recorded first so that the new one brings them back."""
        self._record_packages(workspace, progress)
        progress("removing the old container (volumes stay)")
        self.provider.remove(workspace.id)
        workspace.image_ref, workspace.image_id = reference, image_id
        progress(f"creating a new container from {reference} ({short_image_id(image_id)})")
        self._create_container(workspace)

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
            self._record(workspace, self.provider.status(workspace.id), ObservedState.STOPPED, "")

    def remove(self, name: str, purge: bool = False, progress: Progress = _quiet) -> list[str]:
        """Remove the container; with ``purge`` also the volumes and the record. Returns the
        names of the volumes destroyed."""
        workspace = self.store.find(self.owner, name)
        if workspace is None:
            raise NotFound(f"no workspace named {name!r}; `dev8 ls` lists them")
        with self._operation(workspace, "purge" if purge else "remove", progress) as report:
            destroyed = self._do_remove(workspace, purge, report)
        if purge:
            self.store.delete(workspace.id)
        return destroyed

    def _do_remove(self, workspace: Workspace, purge: bool, progress: Progress) -> list[str]:
        progress("removing the container")
        self.provider.remove(workspace.id)
        self.store.set_desired(workspace, DesiredState.REMOVED)
        workspace.observed_state = ObservedState.REMOVED
        workspace.ports, workspace.container_id = {}, None
        workspace.status_message = "container removed; volumes kept"
        self.store.save_status(workspace)
        if not purge:
            return []
        progress("destroying the volumes")
        return self.provider.remove_volumes(workspace.id)

    # System packages ---------------------------------------------------------------
    def _record_packages(self, workspace: Workspace, progress: Progress) -> None:
        """Record installed packages in the old container just before it goes away."""
        if not self.provider.status(workspace.id).running:
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
        require_live(workspace)
        if forget:
            self._packages_tool(workspace, "forget", *forget)
        return self._packages_tool(workspace, "show")

    def _packages_tool(self, workspace: Workspace, *args: str) -> dict:
        result = self.provider.exec(workspace.id, [*PACKAGES_TOOL, *args], user="root")
        if result.exit_code != 0:
            raise CommandFailed(
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
                    raise WorkspaceCrashed(
                        f"workspace {workspace.name} keeps crashing while starting (exit code "
                        f"{runtime.exit_code}); see `dev8 logs {workspace.name}`"
                    )
                if runtime.state not in (ContainerState.RUNNING, ContainerState.RESTARTING):
                    _, message = derive_observed(workspace.desired_state, runtime, reason)
                    raise WorkspaceCrashed(
                        f"workspace {workspace.name} stopped while starting: "
                        f"{message or runtime.state.value}; see `dev8 logs {workspace.name}`"
                    )
                agent_url = runtime.agent_url or agent_url
            time.sleep(0.05)
        raise OperationTimeout(
            f"workspace {workspace.name} was not healthy after {timeout:.0f} s "
            f"({last_reason}); see `dev8 logs {workspace.name}`"
        )

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

    def volumes_of(self, workspace: Workspace) -> list[VolumeInfo]:
        """The workspace's volumes (a removed workspace keeps them until purged)."""
        return self.provider.volumes(workspace.id)

    def exec(self, name: str, argv: Sequence[str], *, root: bool = False) -> ExecResult:
        """Run ``argv`` in the running workspace (as dev8 in /workspace, or root) and wait."""
        workspace = self.get(name)
        require_live(workspace)
        user = "root" if root else "dev8"
        return self.provider.exec(workspace.id, argv, user=user, workdir="/workspace")

    def exec_argv(
        self, name: str, argv: Sequence[str], *, root: bool = False, tty: bool = False
    ) -> list[str] | None:
        """The local command line that runs ``argv`` attached to this terminal, or None if
        the backend cannot attach one (then ``exec`` runs it without a terminal)."""
        workspace = self.get(name)
        require_live(workspace)
        if not isinstance(self.provider, InteractiveExec):
            return None
        user = "root" if root else "dev8"
        return self.provider.exec_argv(workspace.id, argv, user=user, workdir="/workspace", tty=tty)

    # What the CLI asks of local mode and server mode alike ------------------------------
    def ping(self) -> None:
        self.provider.ping()

    def records(self) -> list[Workspace]:
        """The owner's live workspaces as recorded, without asking the engine."""
        return self.store.list(self.owner)

    def logs(self, name: str, follow: bool = False, tail: int | None = None) -> Iterator[bytes]:
        """The container's output; ``Conflict`` when it has no container."""
        workspace = self.find(name)
        if self.provider.status(workspace.id).state is ContainerState.MISSING:
            raise Conflict(f"workspace {workspace.name} has no container")
        return self.provider.logs(workspace.id, follow=follow, tail=tail)

    def ide_password(self, name: str) -> str:
        return self.find(name).secrets[IDE_PASSWORD]

    # For the services that act on a workspace's volumes (backups, volumes, doctor) -------
    def operation(self, workspace: Workspace, action: str) -> contextlib.AbstractContextManager:
        """Lock ``workspace`` and record ``action`` in its history while the block runs;
        within the queued operation ``run`` carries out for it, that one already is."""
        running = self._running
        if running is not None and running.workspace_id == workspace.id:
            return contextlib.nullcontext()
        return self._operation(workspace, action)

    def stop_for(self, workspace: Workspace, why: str, progress: Progress = _quiet) -> bool:
        """Stop the container inside an operation; True if it was running (so the caller
        starts it again with ``resume``)."""
        if self.provider.status(workspace.id).state not in ACTIVE_CONTAINER:
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


def require_live(workspace: Workspace) -> None:
    """``Conflict`` unless the workspace's container is up."""
    if workspace.observed_state not in LIVE:
        raise Conflict(
            f"workspace {workspace.name} is {workspace.observed_state.value}; "
            f"start it with `dev8 start {workspace.name}`"
        )


def last_activity(agent_status: dict) -> datetime | None:
    """When the agent last saw someone, from its ``/status``; never later than now (the
    container's clock is the host's, but a reply is not trusted to move time forward)."""
    seen = (agent_status.get("activity") or {}).get("last_activity_at")
    if seen is None:
        return None
    return min(datetime.fromtimestamp(float(seen), timezone.utc), utcnow())
