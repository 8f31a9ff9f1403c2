"""`dev8 port-forward` in local mode against a real workspace (engine): a port that the
workspace does not publish (an HTTP server started in it) is reached through its agent's
relay, with the real agent."""

from __future__ import annotations

import signal
import subprocess
import sys

import httpx

from tests.integration.helpers import interruptible
from tests.integration.server.live import wait_for
from tests.net import free_port


def test_port_forward_reaches_a_server_started_in_the_workspace(dev8):
    dev8("up", "fwd")
    dev8(
        "exec",
        "fwd",
        "--",
        "sh",
        "-c",
        "mkdir -p /tmp/site && echo forwarded > /tmp/site/index.html && "
        "cd /tmp/site && setsid nohup python3 -m http.server 8123 >/dev/null 2>&1 &",
    )
    local = free_port()
    forward = subprocess.Popen(
        [sys.executable, "-m", "dev8", "port-forward", "fwd", f"{local}:8123"],
        env=dev8.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=interruptible,  # stopped with SIGINT, as Ctrl-C stops it
    )
    try:
        assert forward.stdout is not None
        line = forward.stdout.readline().decode().strip()
        assert line == f"127.0.0.1:{local} → workspace port 8123"

        def page() -> str | None:
            try:
                answer = httpx.get(f"http://127.0.0.1:{local}/", timeout=10)
            except httpx.HTTPError:
                return None  # the server in the workspace is not up yet
            return answer.text if answer.status_code == 200 else None

        assert wait_for(page, timeout=60, message="the forwarded page").strip() == "forwarded"
    finally:
        forward.send_signal(signal.SIGINT)
        forward.communicate(timeout=30)
    assert forward.returncode == 0
