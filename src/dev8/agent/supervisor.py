"""Starting, watching and restarting the workspace's services.

Each service runs in its own process group (so a restart also ends its children) under a
monitor thread that restarts it with exponential backoff when it exits or fails its health
probe several times in a row.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

log = logging.getLogger("dev8.agent")
PROBE_FRESH_S = 2.0
# A failed answer is reused only briefly: a service coming up (code-server takes about a
# second) is reported healthy within this of its first good probe, not up to 2 s later.
FAILED_PROBE_FRESH_S = 0.05
Probe = Callable[[], "str | None"]  # None when healthy, else the reason


@dataclass
class ServiceSpec:
    name: str
    argv: Sequence[str]
    probe: Probe
    env: Mapping[str, str] = field(default_factory=dict)
    user: int | None = None
    group: int | None = None
    extra_groups: Sequence[int] = ()
    cwd: str | None = None
    startup_grace: float = 30.0  # probe failures before this do not count
    probe_interval: float = 5.0
    failures_before_restart: int = 3
    # Lines of the service's output that are noise (e.g. our own probes' connections).
    quiet: Callable[[str], bool] = lambda _line: False


@dataclass
class ServiceState:
    state: str = "stopped"  # starting | running | unhealthy | backoff | stopped
    pid: int | None = None
    restarts: int = 0
    started_at: float | None = None
    last_exit_code: int | None = None
    message: str = ""

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


class Service:
    MIN_BACKOFF, MAX_BACKOFF, STABLE_AFTER = 0.5, 30.0, 60.0

    def __init__(self, spec: ServiceSpec, stopping: threading.Event) -> None:
        self.spec = spec
        self.status = ServiceState()
        self._stopping = stopping
        self._process: subprocess.Popen[bytes] | None = None
        self._thread = threading.Thread(target=self._monitor, name=spec.name, daemon=True)
        self._probe_lock = threading.Lock()
        self._last_probe: tuple[float | None, str | None] = (None, None)

    def start(self) -> None:
        self._thread.start()

    def probe(self) -> str | None:
        """None when the service is running and answered its probe within the last
        ``PROBE_FRESH_S`` (a probe of sshd costs it a fork: /health and /status asked in a
        burst reuse one answer)."""
        process = self._process
        if process is None or process.poll() is not None:
            return f"{self.spec.name} is not running ({self.status.state})"
        reason = self._probed()
        if reason is None and self.status.state == "starting":
            self.status.state = "running"  # answered before the monitor's next probe
        return f"{self.spec.name}: {reason}" if reason else None

    def _monitor(self) -> None:
        backoff = self.MIN_BACKOFF
        while not self._stopping.is_set():
            started = time.monotonic()
            self._run_once()
            if self._stopping.is_set():
                break
            if time.monotonic() - started > self.STABLE_AFTER:
                backoff = self.MIN_BACKOFF
            self.status.state = "backoff"
            self.status.restarts += 1
            log.warning(
                "%s exited (%s); restarting in %.1f s", self.spec.name, self.status.message, backoff
            )
            self._stopping.wait(backoff)
            backoff = min(backoff * 2, self.MAX_BACKOFF)
        self.status.state = "stopped"

    def _run_once(self) -> None:
        try:
            process = self._spawn()
        except OSError as exc:
            self.status.message = f"cannot start: {exc}"
            return
        started = time.monotonic()
        failures = 0
        while True:
            try:
                code = process.wait(timeout=self._probe_interval(started))
                self.status.last_exit_code = code
                self.status.message = f"exit code {code}"
                return
            except subprocess.TimeoutExpired:
                pass
            if self._stopping.is_set():
                return
            reason = self._probed(fresh=True)
            failures = self._record_probe(reason, failures, started)
            if failures >= self.spec.failures_before_restart:
                self.status.message = f"unhealthy: {reason}"
                log.warning(
                    "%s failed %d health checks (%s); restarting it",
                    self.spec.name,
                    failures,
                    reason,
                )
                self.terminate(grace=3.0)
                self.status.last_exit_code = process.wait()
                return

    def _probed(self, fresh: bool = False) -> str | None:
        """The probe's answer: asked now, or the last one if younger than PROBE_FRESH_S
        (FAILED_PROBE_FRESH_S for a failure)."""
        with self._probe_lock:
            at, reason = self._last_probe
            fresh_for = PROBE_FRESH_S if reason is None else FAILED_PROBE_FRESH_S
            if fresh or at is None or time.monotonic() - at >= fresh_for:
                reason = self.spec.probe()
                self._last_probe = (time.monotonic(), reason)
            return reason

    def _probe_interval(self, started: float) -> float:
        # Probe often while starting, so health is reported as soon as it is true.
        starting = self.status.state == "starting"
        return (
            0.25
            if starting and time.monotonic() - started < self.spec.startup_grace
            else self.spec.probe_interval
        )

    def _record_probe(self, reason: str | None, failures: int, started: float) -> int:
        if reason is None:
            if self.status.state != "running":
                log.info("%s is healthy", self.spec.name)
            self.status.state, self.status.message = "running", ""
            return 0
        if time.monotonic() - started < self.spec.startup_grace and self.status.state == "starting":
            return 0
        self.status.state, self.status.message = "unhealthy", reason
        return failures + 1

    def _spawn(self) -> subprocess.Popen[bytes]:
        spec = self.spec
        with self._probe_lock:
            self._last_probe = (None, None)  # a new process: nothing known of it yet
        process = subprocess.Popen(
            list(spec.argv),
            env=dict(spec.env),
            cwd=spec.cwd,
            user=spec.user,
            group=spec.group,
            extra_groups=list(spec.extra_groups) if spec.user is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._process = process
        self.status.pid, self.status.started_at = process.pid, time.time()
        self.status.state, self.status.message = "starting", ""
        log.info("started %s (pid %d)", spec.name, process.pid)
        threading.Thread(target=self._relay_output, args=(process,), daemon=True).start()
        return process

    def _relay_output(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.decode(errors="replace").rstrip()
            if line and not self.spec.quiet(line):
                print(f"[{self.spec.name}] {line}", flush=True)

    def terminate(self, grace: float) -> None:
        """SIGTERM the service's process group, SIGKILL what is left after ``grace`` s."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        signal_group(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            signal_group(process.pid, signal.SIGKILL)
            process.wait()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


def signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


class Supervisor:
    def __init__(self, specs: Sequence[ServiceSpec]) -> None:
        self.stopping = threading.Event()
        self.services = {spec.name: Service(spec, self.stopping) for spec in specs}

    def start(self) -> None:
        for service in self.services.values():
            service.start()

    def health(self) -> str | None:
        """None when every service runs and answers its probe now, else the first reason."""
        for service in self.services.values():
            reason = service.probe()
            if reason:
                return reason
        return None

    def stop(self, grace: float = 5.0) -> None:
        self.stopping.set()
        threads = [
            threading.Thread(target=s.terminate, args=(grace,)) for s in self.services.values()
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for service in self.services.values():
            service.join(1.0)
