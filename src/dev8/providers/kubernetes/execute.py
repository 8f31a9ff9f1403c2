"""Running a command in a workspace's Pod: the API's ``exec`` over a WebSocket (the client's
``stream``), with no user or working directory of its own, so both go into the command."""

from __future__ import annotations

from collections.abc import Sequence

from kubernetes import client as kube
from kubernetes.stream import stream

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
    session = stream(
        core.connect_get_namespaced_pod_exec,
        pod,
        api.namespace,
        command=command,
        container=CONTAINER,
        stdin=False,
        stdout=True,
        stderr=True,
        tty=False,
        binary=True,
        _preload_content=False,
    )
    try:
        session.run_forever()
        # The exit status first: read_all() empties every channel, the error channel's too.
        code = session.returncode
        return ExecResult(int(code or 0), bytes(session.read_all()))
    finally:
        session.close()
