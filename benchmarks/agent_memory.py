"""Resident memory of the dev8 agent in a running workspace, against an idle python3 started
in the same container (the interpreter's own floor). Goal: agent <= 30 MB."""

from __future__ import annotations

import secrets
import time

import httpx

from dev8.core.images import workspace_image
from dev8.core.naming import LABEL_OWNER
from dev8.providers.docker.client import connect

GOAL_MB = 30.0


def rss_mb(container, pattern: str) -> float:
    out = container.exec_run(["sh", "-c", f"grep VmRSS /proc/$(pgrep -f -o '{pattern}')/status"])
    return int(out.output.split()[1]) / 1024


def main() -> None:
    client = connect()
    owner = f"bench-{secrets.token_hex(3)}"
    container = client.containers.run(
        workspace_image(),
        detach=True,
        labels={LABEL_OWNER: owner},
        tmpfs={"/run": "mode=0755"},
        environment={"DEV8_AGENT_TOKEN": "t", "CODE_SERVER_PASSWORD": "p"},
        ports={"9000/tcp": ("127.0.0.1", None)},
    )
    try:
        container.reload()
        port = container.attrs["NetworkSettings"]["Ports"]["9000/tcp"][0]["HostPort"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        for _ in range(20):  # exercise the status endpoint, as a polling server would
            httpx.get(f"http://127.0.0.1:{port}/status", headers={"Authorization": "Bearer t"})
        container.exec_run(
            ["sh", "-c", "nohup python3 -c 'import time; time.sleep(60)' >/dev/null 2>&1 &"],
            detach=False,
        )
        time.sleep(1)
        agent = rss_mb(container, "^/opt/dev8/venv/bin/python -m dev8.agent")
        baseline = rss_mb(container, "^python3 -c import time")
    finally:
        container.remove(force=True)
    print(f"idle python3 (baseline): {baseline:6.1f} MB")
    print(
        f"dev8 agent:              {agent:6.1f} MB  = {agent / baseline:.2f}x baseline; "
        f"goal <= {GOAL_MB:.0f} MB {'met' if agent <= GOAL_MB else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
