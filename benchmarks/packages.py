"""Restoring the seed's JDK + Maven set after `dev8 rebuild`, against installing the same set
from the network in the same run.

Goals: the restore costs no more than 0.7x the network install, and the workspace is
healthy within 45 s of `dev8 rebuild`.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
import time

from dev8.core.naming import LABEL_OWNER
from dev8.providers.docker.client import connect
from dev8.providers.docker.volumes import remove_volume

PACKAGES = "openjdk-17-jdk maven"
OWNER = f"bench-{secrets.token_hex(3)}"


def main() -> None:
    env = {**os.environ, "DEV8_HOME": tempfile.mkdtemp(prefix="dev8-bench-"), "LOGNAME": OWNER}

    def dev8(*args: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "dev8", *args],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    def timed_exec(script: str) -> float:
        started = time.perf_counter()
        dev8("exec", "bench", "--", "bash", "-lc", script)
        return time.perf_counter() - started

    client = connect()
    try:
        dev8("up", "bench")
        update = timed_exec("sudo apt-get update -q")
        install = timed_exec(f"sudo apt-get install -y -q {PACKAGES}")
        started = time.perf_counter()
        dev8("rebuild", "bench")
        rebuild = time.perf_counter() - started
        report = json.loads(
            dev8(
                "exec", "bench", "--root", "--", "cat", "/var/lib/dev8/packages/restore-report.json"
            )
        )
        java = dev8("exec", "bench", "--", "bash", "-lc", "java -version 2>&1 | head -1")
    finally:
        label = {"label": f"{LABEL_OWNER}={OWNER}"}
        for container in client.containers.list(all=True, filters=label):
            container.remove(force=True)
        for volume in client.volumes.list(filters=label):
            remove_volume(volume)  # its loop device and image too
    restore = report["finished_at"] - report["started_at"]
    print(
        f"packages: {PACKAGES} ({len(report['offline'])} offline, "
        f"{len(report['network'])} network, status {report['status']}); {java.strip()}"
    )
    print(
        f"network install (baseline):     {install:6.1f} s  "
        f"(apt-get update before it: {update:.1f} s)"
    )
    print(
        f"restore from the cache:         {restore:6.1f} s  = {restore / install:.2f}x the "
        f"network install; goal <= 0.7x {'met' if restore / install <= 0.7 else 'MISSED'}"
    )
    print(
        f"`dev8 rebuild` to healthy:      {rebuild:6.1f} s  = {rebuild / install:.2f}x the "
        f"network install; goal <= 45 s {'met' if rebuild <= 45 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
