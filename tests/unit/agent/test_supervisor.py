"""The supervisor with real child processes."""

import os
import signal
import threading
import time

from dev8.agent.supervisor import PROBE_FRESH_S, Service, ServiceSpec, Supervisor


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_a_dead_service_is_restarted_and_counted():
    supervisor = Supervisor([ServiceSpec("sleeper", ["sleep", "60"], probe=lambda: None)])
    supervisor.start()
    service = supervisor.services["sleeper"]
    try:
        assert wait_for(lambda: service.status.state == "running")
        first = service.status.pid
        os.kill(first, signal.SIGKILL)
        assert wait_for(lambda: service.status.pid != first and service.status.state == "running")
        assert service.status.restarts == 1
        assert service.status.last_exit_code == -signal.SIGKILL
        assert supervisor.health() is None
    finally:
        supervisor.stop(grace=2)
    assert service.status.state == "stopped"


def test_a_service_failing_its_probe_is_restarted():
    healthy = {"ok": True}
    spec = ServiceSpec(
        "flaky",
        ["sleep", "60"],
        probe=lambda: None if healthy["ok"] else "no answer",
        startup_grace=0.0,
        probe_interval=0.1,
        failures_before_restart=2,
    )
    supervisor = Supervisor([spec])
    supervisor.start()
    service = supervisor.services["flaky"]
    try:
        assert wait_for(lambda: service.status.state == "running")
        healthy["ok"] = False
        assert wait_for(lambda: service.status.restarts >= 1)
        assert service.status.last_exit_code == -signal.SIGTERM  # ended by the supervisor
        assert supervisor.health() is not None
    finally:
        supervisor.stop(grace=2)


def test_stop_ends_the_whole_process_group_quickly():
    spec = ServiceSpec("tree", ["sh", "-c", "sleep 60 & sleep 60 & wait"], probe=lambda: None)
    supervisor = Supervisor([spec])
    supervisor.start()
    service = supervisor.services["tree"]
    assert wait_for(lambda: service.status.pid is not None)
    pgid = service.status.pid
    started = time.monotonic()
    supervisor.stop(grace=2)
    assert time.monotonic() - started < 3
    assert wait_for(lambda: not _group_alive(pgid), timeout=3)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_health_asked_in_a_burst_probes_once():
    """A probe of sshd costs it a fork: /health and /status asked together (the CLI, the
    server) reuse an answer younger than PROBE_FRESH_S."""
    asked: list[float] = []

    def counted() -> None:
        asked.append(time.monotonic())

    supervisor = Supervisor([ServiceSpec("sleeper", ["sleep", "60"], probe=counted)])
    supervisor.start()
    service = supervisor.services["sleeper"]
    try:
        assert wait_for(lambda: service.status.state == "running")
        before = len(asked)
        assert [supervisor.health() for _ in range(5)] == [None] * 5
        assert len(asked) - before <= 1
    finally:
        supervisor.stop(grace=2)


def test_a_failed_probe_is_not_reused_for_long():
    """A service coming up is reported healthy soon after its first good probe: a failure is
    reused for FAILED_PROBE_FRESH_S only, not the PROBE_FRESH_S a good answer is."""
    answer: list[str | None] = ["not listening yet"]
    service = Service(ServiceSpec("ide", ["true"], probe=lambda: answer[0]), threading.Event())
    assert service._probed() == "not listening yet"
    answer[0] = None
    assert wait_for(lambda: service._probed() is None, timeout=PROBE_FRESH_S / 2)
