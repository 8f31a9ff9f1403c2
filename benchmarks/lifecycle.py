"""Workspace lifecycle timings as ratios to a raw `docker start` measured in the same run.

Measures the `dev8` CLI end to end (a new process per command, as a user runs it: handed to
the warm process, ``dev8.cli.warm``, and with ``DEV8_WARM=off`` in its own process), the
start operation in-process (as `dev8 server` runs it, without interpreter start-up), and the
floor under both: `docker start` of the same workspace container and the wait for its agent
to report sshd and code-server healthy, with no dev8 code in between.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from docker import DockerClient

from dev8.cli.warm.wire import wait_until_answering
from dev8.core.images import workspace_image
from dev8.core.naming import LABEL_OWNER, container_name
from dev8.providers.docker.client import connect
from dev8.providers.docker.provider import DockerProvider
from dev8.providers.docker.volumes import remove_volume
from dev8.service.agent_client import AgentClient
from dev8.service.workspaces import WorkspaceService
from dev8.store.store import Store

OWNER = f"bench-{secrets.token_hex(3)}"


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def median_of(runs: int, prepare: Callable[[], object], action: Callable[[], object]) -> float:
    samples = []
    for _ in range(runs):
        prepare()
        samples.append(timed(action))
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    client = connect()
    data = Path(tempfile.mkdtemp(prefix="dev8-bench-"))
    env = {**os.environ, "DEV8_HOME": str(data), "LOGNAME": OWNER}
    dev8 = [sys.executable, "-m", "dev8"]

    def cli(*args: str, warm: bool = True) -> None:
        own = {} if warm else {"DEV8_WARM": "off"}
        subprocess.run([*dev8, *args], env={**env, **own}, check=True, capture_output=True)

    raw = client.containers.create(
        workspace_image(), labels={LABEL_OWNER: OWNER}, environment={"DEV8_AGENT_TOKEN": "x"}
    )
    try:
        results = {}
        results["raw docker start"] = median_of(
            runs,
            lambda: subprocess.run(
                ["docker", "stop", "-t", "10", raw.id], check=True, capture_output=True
            ),
            lambda: subprocess.run(["docker", "start", raw.id], check=True, capture_output=True),
        )
        raw.remove(force=True)

        cli("ls")  # starts the warm process the measured commands are handed to
        wait_until_answering()
        names = iter(f"cold-{i}" for i in range(runs))
        results["dev8 up (cold: create + start)"] = median_of(
            max(1, runs // 2), lambda: None, lambda: cli("up", next(names))
        )
        cli("up", "bench")
        results["dev8 start (to healthy)"] = median_of(
            runs, lambda: cli("stop", "bench"), lambda: cli("start", "bench")
        )
        results["dev8 restart (to healthy)"] = median_of(
            runs, lambda: None, lambda: cli("restart", "bench")
        )
        results["dev8 start, own process"] = median_of(
            runs, lambda: cli("stop", "bench"), lambda: cli("start", "bench", warm=False)
        )
        results["dev8 restart, own process"] = median_of(
            runs, lambda: None, lambda: cli("restart", "bench", warm=False)
        )
        results["dev8 rebuild (to healthy)"] = median_of(
            max(1, runs // 2), lambda: None, lambda: cli("rebuild", "bench")
        )

        service = WorkspaceService(
            store=Store.open_sqlite(data / "dev8.db"), provider=DockerProvider(client), owner=OWNER
        )
        results["start operation in-process"] = median_of(
            runs, lambda: service.stop("bench"), lambda: service.start("bench")
        )
        results[FLOOR] = median_of(
            runs, lambda: service.stop("bench"), lambda: raw_to_healthy(service, "bench", "start")
        )
        service.start("bench")
        results[RESTART_FLOOR] = median_of(
            runs, lambda: None, lambda: raw_to_healthy(service, "bench", "restart")
        )
    finally:
        cleanup(client)
        shutil.rmtree(data, ignore_errors=True)
    report(results, runs)


FLOOR = "floor: docker start + agent healthy"
RESTART_FLOOR = "floor: docker restart + agent healthy"


def raw_to_healthy(service: WorkspaceService, name: str, verb: str) -> None:
    """What no dev8 code can go below: `docker start` (or `restart`) of the workspace's own
    container, then its agent polled (as the service polls it) until sshd and code-server
    answer."""
    workspace = service.find(name)
    subprocess.run(["docker", verb, container_name(workspace.id)], check=True, capture_output=True)
    agent_url = service.provider.status(workspace.id).agent_url
    while AgentClient(timeout=2).health(agent_url) is not None:
        time.sleep(0.05)


def cleanup(client: DockerClient) -> None:
    """Everything of OWNER, by its label: containers, volumes, each workspace's network."""
    label = {"label": f"{LABEL_OWNER}={OWNER}"}
    for container in client.containers.list(all=True, filters=label):
        container.remove(force=True)
    for volume in client.volumes.list(filters=label):
        remove_volume(volume)  # its loop device and image too
    for network in client.networks.list(filters=label):
        network.remove()


GOALS = {
    "dev8 start (to healthy)": 6.0,
    "dev8 restart (to healthy)": 8.0,
    "start operation in-process": 6.0,
}


def report(results: dict[str, float], runs: int) -> None:
    base = results["raw docker start"]
    print(
        f"median of {runs} runs (cold and rebuild: {max(1, runs // 2)}); "
        f"baseline raw `docker start` = {base:.3f} s"
    )
    print(f"{'operation':<38} {'seconds':>8} {'x raw':>7}  goal")
    for name, seconds in results.items():
        goal = GOALS.get(name)
        verdict = (
            ""
            if goal is None
            else f"<= {goal:.0f}x {'met' if seconds / base <= goal else 'MISSED'}"
        )
        print(f"{name:<38} {seconds:8.3f} {seconds / base:7.2f}  {verdict}")
    for cli, floor in (
        ("dev8 start (to healthy)", FLOOR),
        ("dev8 restart (to healthy)", RESTART_FLOOR),
    ):
        if cli in results and floor in results:
            added = results[cli] - results[floor]
            print(f"{cli.split(' (')[0]} adds {added:.3f} s to its floor ({floor})")


if __name__ == "__main__":
    main()
