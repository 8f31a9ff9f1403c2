"""What a hostile tenant costs another member: B's create-to-healthy and idle stop with
member A's workspace hostile, as a ratio to the same without, in the same run.

A real `dev8 server` (Docker provider, SQLite; reconciler every 0.2 s, observation every
1 s, ``--observe-s``: the server's default is 10 s), two members
(``tests/security/hostile_tenant.py``). A has a running workspace throughout. Rounds
alternate, quiet then hostile:

- quiet: A's workspace runs its real agent and does nothing;
- hostile: A's agent replaced (1e999, a 256 MiB body, a trickle), a fork loop at its pids
  limit, and A's restore of a backup racing links in ``.dev8-restore`` while B creates; A
  hostile again (the restore's start ran the real agent) before B's idle phase. A restart
  of A's workspace ends it.

Each round B creates a workspace (timed: the request to running, which the server records
only once the agent is healthy), runs a command over SSH through the server, sets a short
idle timeout, and waits for the server's idle stop (timed: from the idle deadline, last
activity + timeout on the server's clock, to the stop's end); then purges it. Goal: both
medians with A hostile at most 1.5x the quiet ones.

    .venv/bin/python benchmarks/hostile_tenant.py [--rounds 3] [--idle-s 10] [--observe-s 1]
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.security.hostile_tenant: the two members and A's doing

from tests.security.hostile_tenant import (  # noqa: E402
    Hostility,
    Tenants,
    created_healthy,
    idle_stopped,
    median,
    race_restore,
    run_command,
    tenants,
)

from dev8.core.errors import Dev8Error  # noqa: E402
from dev8.core.images import workspace_image  # noqa: E402
from dev8.providers.docker.client import connect  # noqa: E402

GOAL = 1.5
HOSTILE_S = 1800  # A's fork loop and planter end by themselves after this at the latest


def one_round(
    two: Tenants, hostility: Hostility | None, name: str, idle_s: int
) -> tuple[float, float]:
    """B's (create-to-healthy, idle stop latency), A hostile when ``hostility`` is given."""
    restore = None
    if hostility is not None:
        hostility.arm()
        restore = race_restore(two.a, "evil", two.backup_id)
    workspace, create_s = created_healthy(two.b, name, two.image, idle_timeout_s=0)
    run_command(workspace, two.ssh_key, "true")
    if hostility is not None and restore is not None:
        try:
            restore.wait(timeout=900)
        except Dev8Error as exc:
            print(f"  A's restore was refused: {exc.message}")
        hostility.arm(with_planter=False)
        run_command(workspace, two.ssh_key, "true")  # B's last activity: after A is hostile
    workspace.update(idle_timeout_s=idle_s)
    idle_latency, _ = idle_stopped(workspace, idle_s + 600)
    workspace.remove(purge=True).wait(timeout=600)
    if hostility is not None:
        forks = hostility.fork_report()
        print(f"  A's fork loop: {forks['forked']} forks, {forks['refused']} refused at the limit")
        two.a.workspaces.get("evil").restart().wait(timeout=600)  # the real agent again
    return create_s, idle_latency


def ssh_key(directory: Path) -> Path:
    key = directory / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


def seconds(values: list[float]) -> str:
    return ", ".join(f"{value:.2f}" for value in values)


def ratio_line(what: str, quiet: list[float], hostile: list[float]) -> str:
    ratio = median(hostile) / median(quiet)
    verdict = "met" if ratio <= GOAL else "NOT met"
    runs = f"quiet {seconds(quiet)}; hostile {seconds(hostile)}"
    return (
        f"{what}: median quiet {median(quiet):.2f} s, hostile {median(hostile):.2f} s, "
        f"ratio {ratio:.2f}x (goal <= {GOAL}x: {verdict})\n    runs (s): {runs}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each kind")
    parser.add_argument("--idle-s", type=int, default=10, help="B's idle timeout")
    parser.add_argument(
        "--observe-s", default="1", help="the server's DEV8_OBSERVE_INTERVAL_S (default 10)"
    )
    args = parser.parse_args()
    engine = connect()
    owner = f"bench-hostile-{secrets.token_hex(2)}"
    quiet: list[tuple[float, float]] = []
    hostile: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory(prefix="dev8-hostile-bench-") as scratch:
        directory = Path(scratch)
        key = ssh_key(directory)
        settings = {"observe_interval_s": args.observe_s}
        with tenants(
            directory / "server", engine, owner, key, workspace_image(), **settings
        ) as two:
            hostility = Hostility(two.a_workspace(), HOSTILE_S)
            print(f"A's workspace is up and backed up; {args.rounds} rounds of each, interleaved")
            for n in range(args.rounds):
                for kind, found, given in (("quiet", quiet, None), ("hostile", hostile, hostility)):
                    create_s, idle_latency = one_round(two, given, f"b-{kind}-{n}", args.idle_s)
                    found.append((create_s, idle_latency))
                    print(f"  round {n} {kind:<7}: create-to-healthy {create_s:.2f} s, ", end="")
                    print(f"idle stop {idle_latency:.2f} s")
            agent = hostility.agent_report()
    print(f"load average at the end: {seconds(list(os.getloadavg()))} ({os.cpu_count()} CPUs)")
    print(f"A's hostile agent (last arming): {agent['requests']} requests, {agent['sent']} bytes")
    print(ratio_line("B's create-to-healthy", [q[0] for q in quiet], [h[0] for h in hostile]))
    print(
        ratio_line(
            "B's idle stop (deadline to stopped)", [q[1] for q in quiet], [h[1] for h in hostile]
        )
    )


if __name__ == "__main__":
    main()
