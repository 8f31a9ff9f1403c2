"""How fast the everyday `dev8` commands answer, as ratios to baselines measured in the same
run: `dev8 --version` and `dev8 --help` against `python -c pass` (the interpreter's own
start-up), `dev8 ls` (10 workspaces, 3 running) and `dev8 status NAME` against `docker ps`.
`dev8 ls` and `status` are handed to the warm process (``dev8.cli.warm``) as a user's are
once one runs. For reference, without a goal: both in their own process; `dev8 ls` the full
way (Typer, SQLAlchemy and the docker SDK: what it takes when an observed state must be
recorded, forced here by spelling the engine's socket `http+unix://`, which only the SDK
reads); and what importing each library costs on its own (rich is what the quick way loads;
the others are what it avoids), so that a miss can be told apart into dev8's work, its
dependencies' start-up and the agents' answers.

Every command is a new process, as a user runs it; the commands are taken in turn, round
after round, so that the machine's noise falls on all of them alike, and the median of each
is reported. dev8's own modules are byte-compiled once (into the run's data directory) as
an installed package's are. Everything is created for a throwaway owner and removed by its
label at the end.
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dev8.cli.warm.wire import wait_until_answering
from dev8.core.naming import LABEL_OWNER
from dev8.providers.docker.client import connect
from dev8.providers.docker.provider import DockerProvider
from dev8.providers.docker.reads import engine_socket
from dev8.providers.docker.volumes import remove_volume
from dev8.service.workspaces import CreateRequest, WorkspaceService
from dev8.store.store import Store

OWNER = f"bench-{secrets.token_hex(3)}"
WORKSPACES, RUNNING = 10, 3
GOALS = {  # name -> (baseline, at most this many times it)
    "dev8 --version": ("python -c pass", 6.0),
    "dev8 --help": ("python -c pass", 6.0),
    "dev8 ls": ("docker ps", 15.0),
    "dev8 status NAME": ("docker ps", 15.0),
}
# name -> code: libraries, each alone (Typer 0.29 coerces every parameter with a pydantic
# TypeAdapter, so pydantic comes with it).
IMPORTS = {
    "import rich": "import rich.console, rich.table",
    "import typer+rich": "import typer, rich.table; import pydantic; pydantic.TypeAdapter(bool)",
    "import sqlalchemy": "import sqlalchemy",
    "import dev8.store": "import dev8.store.store",
    "import docker": "import docker",
}


REFERENCES = {
    "dev8 ls, full way": "no goal",
    "dev8 ls, own process": "no goal (DEV8_WARM=off)",
    "dev8 status NAME, own process": "no goal (DEV8_WARM=off)",
    **dict.fromkeys(IMPORTS, "the import alone"),
}


def dev8_command() -> list[str]:
    script = Path(sys.executable).with_name("dev8")
    return [str(script)] if script.exists() else [sys.executable, "-m", "dev8"]


def commands(dev8: list[str], running: str) -> dict[str, list[str]]:
    docker = shutil.which("docker") or "docker"
    full_way = ["env", f"DOCKER_HOST=http+unix://{engine_socket()}", *dev8, "--debug", "ls"]
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "docker ps": [docker, "ps"],
        "dev8 --version": [*dev8, "--version"],
        "dev8 --help": [*dev8, "--help"],
        "dev8 ls": [*dev8, "ls"],
        "dev8 status NAME": [*dev8, "status", running],
        "dev8 ls, full way": full_way,
        "dev8 ls, own process": ["env", "DEV8_WARM=off", *dev8, "ls"],
        "dev8 status NAME, own process": ["env", "DEV8_WARM=off", *dev8, "status", running],
        **{name: [sys.executable, "-c", code] for name, code in IMPORTS.items()},
    }


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(
    argvs: dict[str, list[str]], env: dict[str, str], runs: int
) -> dict[str, tuple[float, float]]:
    """Per command: the median wall time and the median CPU time (user + system) of a run.
    CPU time suffers less from a busy machine; the goals are about wall time."""
    walls: dict[str, list[float]] = {name: [] for name in argvs}
    cpus: dict[str, list[float]] = {name: [] for name in argvs}
    for _ in range(runs):
        for name, argv in argvs.items():
            started, cpu = time.perf_counter(), cpu_seconds()
            subprocess.run(argv, env=env, check=True, capture_output=True)
            walls[name].append(time.perf_counter() - started)
            cpus[name].append(cpu_seconds() - cpu)
    return {name: (statistics.median(walls[name]), statistics.median(cpus[name])) for name in argvs}


def populate(service: WorkspaceService) -> str:
    """WORKSPACES workspaces of OWNER, RUNNING of them started (healthy); one running name."""
    for index in range(WORKSPACES):
        name = f"bench-{index}"
        if index < RUNNING:
            service.up(CreateRequest(name=name))
        else:
            service.create(CreateRequest(name=name))
    return "bench-0"


def cleanup(owner: str) -> None:
    client = connect()
    label = {"label": f"{LABEL_OWNER}={owner}"}
    for container in client.containers.list(all=True, filters=label):
        container.remove(force=True)
    for volume in client.volumes.list(filters=label):
        remove_volume(volume)  # its loop device and image too
    for network in client.networks.list(filters=label):  # each workspace has its own
        network.remove()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    data = Path(tempfile.mkdtemp(prefix="dev8-bench-cli-"))
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONDONTWRITEBYTECODE", "DEV8_SERVER_URL", "DEV8_TOKEN")
    }
    env.update(
        DEV8_HOME=str(data), LOGNAME=OWNER, PYTHONPYCACHEPREFIX=str(data / "pycache"), COLUMNS="80"
    )
    try:
        service = WorkspaceService(
            store=Store.open_sqlite(data / "dev8.db"), provider=DockerProvider(), owner=OWNER
        )
        running = populate(service)
        argvs = commands(dev8_command(), running)
        measure(argvs, env, 1)  # byte-compiles dev8, warms the caches, starts the warm process
        wait_until_answering()
        results = measure(argvs, env, runs)
    finally:
        cleanup(OWNER)
        shutil.rmtree(data, ignore_errors=True)
    report(results, runs)


def report(results: dict[str, tuple[float, float]], runs: int) -> None:
    print(f"median of {runs} runs each, taken in turn; {WORKSPACES} workspaces, {RUNNING} running")
    width = max(map(len, results))
    print(
        f"{'command':<{width}} {'wall s':>7} {'ratio':>6} {'cpu s':>7} {'ratio':>6}"
        "  baseline    goal"
    )
    for name, (wall, cpu) in results.items():
        if name in REFERENCES:
            base_wall, base_cpu = results["docker ps"]
            print(
                f"{name:<{width}} {wall:7.3f} {wall / base_wall:5.1f}x {cpu:7.3f} "
                f"{cpu / base_cpu:5.1f}x  docker ps       (reference: {REFERENCES[name]})"
            )
            continue
        if name not in GOALS:
            print(f"{name:<{width}} {wall:7.3f} {'':>6} {cpu:7.3f} {'':>6}  (baseline)")
            continue
        baseline, goal = GOALS[name]
        base_wall, base_cpu = results[baseline]
        ratio = wall / base_wall
        verdict = "met" if ratio <= goal else "MISSED"
        print(
            f"{name:<{width}} {wall:7.3f} {ratio:5.1f}x {cpu:7.3f} {cpu / base_cpu:5.1f}x  "
            f"{baseline:<14}  <= {goal:.0f}x (wall) {verdict}"
        )


if __name__ == "__main__":
    main()
