"""The reconciler: background threads that make workspaces what they were asked to be.

Every ``reconcile_interval_s`` (and at once when a request queues work) it hands each
workspace with queued or abandoned operations to a worker, which runs them through
``OperationRunner`` under the workspace's lock. Every ``observe_interval_s`` a thread of its
own observes the workspaces nobody is changing: records their state, learns their activity
from their agents, stops those idle past their timeout, and queues a start or stop for those
whose container is not what their desired state says (unless their last operation failed: a
failure waits for a person, it is not retried in a loop).

An agent's answers are its member's to choose, so observation never holds up dispatch, asks
``OBSERVERS`` workspaces at once, and never waits for the slowest: a pass hands out the
workspaces whose last observation has ended and returns, so an agent that stalls until the
client's deadline delays only its own workspace's next look. A workspace whose observation
fails gets one log line while the others go on.

Workers are daemon threads: when the server stops, an operation in flight stops with it and
is resumed by the next server (see ``dev8.service.operations``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait

from dev8.core.errors import Conflict, Dev8Error
from dev8.core.quotas import format_bytes
from dev8.core.states import ACTIVE_CONTAINER, ContainerState, DesiredState, ObservedState
from dev8.core.workspace import FAILED, Action, Workspace
from dev8.providers.base import BulkStatus, LayerSizes, QuotaVolumes, RuntimeStatus
from dev8.server.context import ServerContext
from dev8.service.idle import describe_idle, effective_timeout_s, idle_deadline
from dev8.service.operations import OperationRunner
from dev8.store.store import new_operation, utcnow

log = logging.getLogger("dev8.reconciler")
OBSERVERS = 8  # workspaces observed at once


class Reconciler:
    def __init__(self, context: ServerContext) -> None:
        self.context = context
        self.store = context.store
        settings = context.settings
        self.runner = OperationRunner(
            self.store,
            context.service_for,
            max_attempts=settings.max_attempts,
            on_finished=context.metrics.operation_finished,
        )
        self._work: queue.Queue[str] = queue.Queue()
        self._busy: set[str] = set()
        self._busy_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._observers = ThreadPoolExecutor(OBSERVERS, thread_name_prefix="observe")
        self._observing: dict[str, Future[None]] = {}  # observations that have not ended

    # Life cycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self._reattach_volumes()
        workers = self.context.settings.max_concurrent_operations
        self._threads = [
            threading.Thread(target=self._loop, name="reconciler", daemon=True),
            threading.Thread(target=self._observe_loop, name="observer", daemon=True),
        ]
        self._threads += [
            threading.Thread(target=self._worker, name=f"operation-{n}", daemon=True)
            for n in range(workers)
        ]
        for thread in self._threads:
            thread.start()
        self.context.wake = self._wake.set

    def stop(self) -> None:
        """Stop taking work; wait a little for operations in flight, then leave them to be
        resumed by the next server."""
        self._stop.set()
        self._wake.set()
        deadline = time.monotonic() + self.context.settings.shutdown_grace_s
        while self._busy and time.monotonic() < deadline:
            time.sleep(0.1)
        if self._busy:
            log.warning("leaving %d operation(s) in flight to the next start", len(self._busy))
        self._observers.shutdown(wait=False, cancel_futures=True)

    def _reattach_volumes(self) -> None:
        """After a reboot the engine could not mount enforced volumes of the workspaces it
        restarts; attached again, the first pass's starts succeed."""
        provider = self.context.provider
        if not isinstance(provider, QuotaVolumes):
            return
        try:
            names = provider.attach_all()
        except Dev8Error as exc:
            log.warning("re-attaching quota volumes: %s", exc.message)
            return
        if names:
            log.info("re-attached %d quota volume(s)", len(names))

    def _loop(self) -> None:
        interval = self.context.settings.reconcile_interval_s
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("reconciler tick failed; retrying")
            self._wake.wait(interval)
            self._wake.clear()

    def tick(self) -> None:
        self.dispatch()

    def _observe_loop(self) -> None:
        settings = self.context.settings
        next_layer_check = time.monotonic() + settings.layer_check_interval_s
        while not self._stop.is_set():
            try:
                self.observe_all(wait_for_all=False)
                if time.monotonic() >= next_layer_check:
                    next_layer_check = time.monotonic() + settings.layer_check_interval_s
                    self.police_layers()
            except Exception:
                log.exception("observing workspaces failed; retrying")
            self._stop.wait(settings.observe_interval_s)

    # Operations -------------------------------------------------------------------------
    def dispatch(self) -> None:
        for workspace_id in self.store.workspaces_with_work():
            with self._busy_lock:
                if workspace_id in self._busy:
                    continue
                self._busy.add(workspace_id)
            self._work.put(workspace_id)

    def _worker(self) -> None:
        while not self._stop.is_set():
            try:
                workspace_id = self._work.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                if not self._stop.is_set():
                    self.runner.run_next(workspace_id)
            except Exception:
                log.exception("running an operation of workspace %s failed", workspace_id)
            finally:
                with self._busy_lock:
                    self._busy.discard(workspace_id)
                self._wake.set()  # its next operation, if any, need not wait for a tick

    # Observation ------------------------------------------------------------------------
    def observe_all(self, wait_for_all: bool = True) -> list[Future[None]]:
        """One pass: observe every workspace not already being observed. The loop does not
        wait for the pass to end; a caller that reads the results does (the default), for
        the observations it started and those already under way. The pass's observations."""
        # The records first: the engine's answer is then at least as new as each of them. A
        # snapshot taken first would judge a workspace recorded after it as missing.
        listed = self.store.list(with_secrets=False)
        provider = self.context.provider
        summaries = provider.statuses() if isinstance(provider, BulkStatus) else None
        pending: list[Future[None]] = []
        for workspace in listed:
            with self._busy_lock:
                under_way = self._observing.get(workspace.id)
                if under_way is None:
                    try:
                        under_way = self._observers.submit(self._observe_one, workspace, summaries)
                    except RuntimeError:  # shut down: the reconciler is stopping
                        return pending
                    self._observing[workspace.id] = under_way
            pending.append(under_way)
        if wait_for_all:
            wait(pending)
        return pending

    def _observed(self, workspace_id: str) -> None:
        with self._busy_lock:
            self._observing.pop(workspace_id, None)

    def _observe_one(self, workspace: Workspace, summaries: BulkSummaries) -> None:
        """Observe one workspace; whatever goes wrong is its own (one log line)."""
        try:
            self._observe_guarded(workspace, summaries)
        finally:
            self._observed(workspace.id)

    def _observe_guarded(self, workspace: Workspace, summaries: BulkSummaries) -> None:
        if self._stop.is_set():
            return
        with self._busy_lock:
            if workspace.id in self._busy:
                return
        try:
            known = None
            if summaries is not None:
                known = summaries.get(workspace.id) or RuntimeStatus(ContainerState.MISSING)
                if _settled(workspace, known):
                    self._correct_drift(workspace, known.state)
                    return
            self.observe(
                workspace, known if known and known.state is ContainerState.MISSING else None
            )
        except Dev8Error as exc:
            log.warning("observing workspace %s: %s", _named(workspace), exc.message)
        except Exception as exc:
            log.warning("observing workspace %s failed: %r", _named(workspace), exc)
            log.debug("observing workspace %s", _named(workspace), exc_info=True)

    def observe(self, listed: Workspace, runtime: RuntimeStatus | None = None) -> None:
        """Record what one workspace is, then act on idleness or drift. Skipped while any
        operation is queued or running for it: that operation records the outcome."""
        if self.store.next_operation(listed.id) is not None:
            return
        service = self.context.service(listed.owner, "reconciler")
        try:
            with self.store.lock(listed.id, wait=False):
                workspace = self.store.get(listed.id)  # as it is now, with its agent token
                seen = service.observe_activity(workspace, runtime)
                if seen.activity is not None:
                    self.store.touch_activity(workspace.id, seen.activity)
                    last = seen.workspace.last_activity_at
                    seen.workspace.last_activity_at = max(seen.activity, last or seen.activity)
        except Conflict:
            return  # an operation is starting on it right now
        if not self._stop_if_idle(seen.workspace):
            self._correct_drift(seen.workspace, seen.runtime.state)

    def _stop_if_idle(self, workspace: Workspace) -> bool:
        if workspace.desired_state is not DesiredState.RUNNING or workspace.observed_state not in (
            ObservedState.RUNNING,
            ObservedState.UNHEALTHY,
        ):
            return False
        default = self.context.settings.idle_timeout_s
        deadline = idle_deadline(workspace, default)
        if deadline is None or utcnow() < deadline:
            return False
        timeout = describe_idle(effective_timeout_s(workspace, default))
        since = workspace.last_activity_at or workspace.created_at
        message = f"stopped after {timeout} without activity (last activity {since:%H:%M:%S} UTC)"
        operation = new_operation(
            workspace, "stop", "idle-timeout", params={"reason": "idle", "message": message}
        )
        self.store.queue(workspace, [operation], DesiredState.STOPPED)
        log.info("workspace %s/%s is idle; stopping it", workspace.owner, workspace.name)
        self._wake.set()
        return True

    def police_layers(self) -> None:
        """Stop the running workspaces that wrote more than the server allows outside their
        volumes: no engine here bounds a container's own layer (docs/security.md)."""
        limit = self.context.settings.member_max_writable_layer
        provider = self.context.provider
        if not limit or not isinstance(provider, LayerSizes):
            return
        sizes = provider.writable_layers()
        for workspace in self.store.list(with_secrets=False):
            size = sizes.get(workspace.id, 0)
            if size <= limit or workspace.desired_state is not DesiredState.RUNNING:
                continue
            if self.store.next_operation(workspace.id) is not None:
                continue
            message = (
                f"stopped: it wrote {format_bytes(size)} outside /home/dev8 and /workspace "
                f"(apt installs, /tmp), more than the server's {format_bytes(limit)}; "
                "a rebuild starts it on a fresh layer and reinstalls its packages"
            )
            operation = new_operation(
                workspace, "stop", "layer-limit", params={"reason": "layer", "message": message}
            )
            self.store.queue(workspace, [operation], DesiredState.STOPPED)
            log.warning("workspace %s %s", _named(workspace), message)
            self._wake.set()

    def _correct_drift(self, workspace: Workspace, container: ContainerState) -> None:
        desired = workspace.desired_state
        if desired is DesiredState.RUNNING and container not in ACTIVE_CONTAINER:
            action = Action.START
        elif desired is DesiredState.STOPPED and container in ACTIVE_CONTAINER:
            action = Action.STOP
        else:
            return
        if self.store.next_operation(workspace.id) is not None:
            return
        last = self.store.last_finished(workspace.id)
        if last is not None and last.result == FAILED:
            return
        log.info(
            "workspace %s/%s should be %s but its container is %s; queueing a %s",
            workspace.owner,
            workspace.name,
            desired.value,
            container,
            action,
        )
        self.store.queue(workspace, [new_operation(workspace, action, "reconciler")])
        self._wake.set()


# What a container's listed state may go with, among recorded states: nothing to look at.
_SETTLED = {
    ContainerState.MISSING: (ObservedState.MISSING, ObservedState.REMOVED, ObservedState.FAILED),
    ContainerState.EXITED: (ObservedState.STOPPED, ObservedState.CRASHED, ObservedState.FAILED),
    ContainerState.CREATED: (ObservedState.STOPPED, ObservedState.FAILED),
    ContainerState.RESTARTING: (ObservedState.CRASHED,),
    ContainerState.PAUSED: (ObservedState.UNHEALTHY,),
}


BulkSummaries = dict[str, RuntimeStatus] | None


def _named(workspace: Workspace) -> str:
    return f"{workspace.owner}/{workspace.name}"


def _settled(workspace: Workspace, runtime: RuntimeStatus) -> bool:
    """Whether the recorded state still fits the container. A running one is never
    settled: its health and activity are asked for at every pass."""
    return workspace.observed_state in _SETTLED.get(runtime.state, ())
