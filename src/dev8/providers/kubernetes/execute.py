"""Running a command in a Pod: the API's ``exec`` (and ``attach``) over a WebSocket (the
client's ``stream``), with no user or working directory of its own, so both go into the
command."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from kubernetes import client as kube
from kubernetes.stream import stream, ws_client

from dev8.providers.base import ExecResult
from dev8.providers.kubernetes.client import KubeApi
from dev8.providers.kubernetes.specs import CONTAINER


def as_user(argv: Sequence[str], user: str, workdir: str | None) -> list[str]:
    """``argv`` run as ``user`` in ``workdir`` with the environment a login gives, as
    ``docker exec --user --workdir`` does (exec runs as the container's user: root).
    ``runuser`` (util-linux) and ``env --chdir`` (coreutils) are in every Debian image."""
    home = "/root" if user == "root" else f"/home/{user}"
    command = ["env", f"HOME={home}", f"USER={user}", f"LOGNAME={user}"]
    if workdir:
        command[1:1] = [f"--chdir={workdir}"]
    if user != "root":
        command = ["runuser", "-u", user, "--", *command]
    return [*command, *argv]


def run(api: KubeApi, pod: str, command: list[str]) -> ExecResult:
    """Run ``command`` in the Pod's workspace container and wait for it; stdout and stderr
    together, as Docker's exec gives them."""
    core = kube.CoreV1Api(api.api_client)
    session = _stream(
        api, core.connect_get_namespaced_pod_exec, pod, CONTAINER, stdin=False, command=command
    )
    try:
        session.run_forever()
        # The exit status first: read_all() empties every channel, the error channel's too.
        code = session.returncode
        return ExecResult(int(code or 0), bytes(session.read_all()))
    finally:
        session.close()


def open_session(
    api: KubeApi, pod: str, container: str, command: list[str] | None, *, stdin: bool
) -> Any:
    """A WebSocket to the container (``kube.stream.ws_client.WSClient``): ``command`` run by
    ``exec``, or, for None, ``attach`` to its main process. Binary channels, read by the
    caller as they come: the client's copy of everything received is turned off (it would
    hold a whole archive in memory)."""
    core = kube.CoreV1Api(api.api_client)
    method: Any = core.connect_get_namespaced_pod_attach
    extra: dict[str, Any] = {}
    if command is not None:
        method, extra = core.connect_get_namespaced_pod_exec, {"command": command}
    session = _stream(api, method, pod, container, stdin=stdin, **extra)
    session._all = ws_client._IgnoredIO()
    return session


def _stream(api: KubeApi, method: Any, pod: str, container: str, **how: Any) -> Any:
    """A WebSocket session of ``method`` (exec or attach) to the container: binary, no
    terminal, stdout and stderr apart."""
    return stream(
        method,
        pod,
        api.namespace,
        container=container,
        stdout=True,
        stderr=True,
        tty=False,
        binary=True,
        _preload_content=False,
        **how,
    )


def exit_code(session: Any) -> int | None:
    """An ended exec session's exit code; None if the API sent no status (lost)."""
    status = session.read_channel(ws_client.ERROR_CHANNEL)
    try:
        parsed = json.loads(status) if status else None
    except ValueError:
        return None
    if not isinstance(parsed, dict):
        return None
    if parsed.get("status") == "Success":
        return 0
    causes = (parsed.get("details") or {}).get("causes") or [{}]
    message = str(causes[0].get("message", ""))
    return int(message) if message.isdigit() else None
