"""The node for helper Pods on the API mock: it runs each helper's real command, as a
container runtime would, and serves ``attach`` and ``exec`` to it over the API's channel
protocol. API mock: no real cluster; the container is a stand-in, said here:

- the "container" is the Pod's command (the provider's wrapper and the job's script) run by
  this machine's bash, tar, zstd and python3, under ``chroot`` into a directory of its own
  in a private mount namespace (``unshare``): this machine's /usr and /etc read-only, each
  claim a directory of the test (``claims``) bind-mounted at its target, read-only when the
  Pod says so. Not an image, no cgroup limits, no network isolation, root's capabilities;
- ``exec`` enters that namespace and root (``nsenter --mount --root``), as a runtime's exec
  joins the container;
- the Pod's status is set through the API as the kubelet sets it: ``Running`` when created,
  ``Succeeded``/``Failed`` with the exit code when the command ends; a deleted Pod's
  command is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
import aiohttp.web

from dev8.providers.kubernetes.client import KubeApi

# Makes the container's root in a new mount namespace, then runs the command there. $1: the
# root, $2: "src target ro|rw" lines for the claims, then the command.
SANDBOX = r"""set -e
root=$1; binds=$2; shift 2
mount --make-rprivate /
for dir in usr etc dev; do mkdir -p "$root/$dir"; mount --rbind "/$dir" "$root/$dir"; done
mount -o remount,bind,ro "$root/usr"; mount -o remount,bind,ro "$root/etc"
for link in bin lib lib64 sbin; do ln -sfn "usr/$link" "$root/$link"; done
mkdir -p "$root/tmp" && chmod 1777 "$root/tmp"
printf '%s\n' "$binds" | while read -r src target mode; do
    [ -n "$src" ] || continue
    mkdir -p "$root$target"; mount --bind "$src" "$root$target"
    if [ "$mode" = ro ]; then mount -o remount,bind,ro "$root$target"; fi
done
cd /
exec chroot "$root" "$@"
"""


class HelperNode:
    """Runs helper Pods for a ``ClusterMock`` (see the module)."""

    def __init__(self, api: KubeApi) -> None:
        self.api = api  # the test's own client: the kubelet's status updates
        self.claims: dict[str, Path] = {}  # claim name -> its data, made on first use
        self._folder = Path(tempfile.mkdtemp(prefix="dev8-helpernode-"))
        self._processes: dict[str, asyncio.subprocess.Process] = {}
        self._started: dict[str, asyncio.Event] = {}
        self.exit_codes: dict[str, int] = {}
        self.killed: set[str] = set()

    def close(self) -> None:
        for process in self._processes.values():
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        shutil.rmtree(self._folder, ignore_errors=True)

    def claim(self, name: str) -> Path:
        path = self.claims.setdefault(name, self._folder / "claims" / name)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def running(self, pod: dict[str, Any]) -> dict[str, Any]:
        """The status a new helper Pod gets (the kubelet started its container)."""
        container = pod["spec"]["containers"][0]
        self._started.setdefault(pod["metadata"]["name"], asyncio.Event())
        return {
            "phase": "Running",
            "containerStatuses": [
                {
                    "name": container["name"],
                    "image": container["image"],
                    "ready": True,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": "2026-12-02T00:00:00Z"}},
                }
            ],
        }

    async def deleted(self, name: str) -> None:
        process = self._processes.get(name)
        if process is not None and process.returncode is None:
            self.killed.add(name)
            process.kill()

    # attach: the Pod's command itself ----------------------------------------------------
    async def attach(self, request: aiohttp.web.Request, pod: dict[str, Any]) -> Any:
        name = pod["metadata"]["name"]
        argv = ["unshare", "--mount", "bash", "-c", SANDBOX, "sandbox"]
        argv += [str(self._folder / "roots" / name), self._binds(pod)]
        argv += pod["spec"]["containers"][0]["command"]
        env = {e["name"]: e["value"] for e in pod["spec"]["containers"][0].get("env") or []}
        env["PATH"] = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        self._processes[name] = process
        self._started.setdefault(name, asyncio.Event()).set()
        socket = await _websocket(request)
        code = await _pump(socket, process)
        self.exit_codes[name] = code
        await asyncio.get_running_loop().run_in_executor(None, self._ended, name, pod, code)
        await socket.close()
        return socket

    def _binds(self, pod: dict[str, Any]) -> str:
        claims = {
            volume["name"]: volume["persistentVolumeClaim"]
            for volume in pod["spec"].get("volumes") or []
            if "persistentVolumeClaim" in volume
        }
        lines = []
        for mount in pod["spec"]["containers"][0].get("volumeMounts") or []:
            claim = claims[mount["name"]]
            read_only = mount.get("readOnly") or claim.get("readOnly")
            source = self.claim(claim["claimName"])
            lines.append(f"{source} {mount['mountPath']} {'ro' if read_only else 'rw'}")
        return "\n".join(lines)

    def _ended(self, name: str, pod: dict[str, Any], code: int) -> None:
        container = pod["spec"]["containers"][0]
        status = {
            "phase": "Succeeded" if code == 0 else "Failed",
            "containerStatuses": [
                {
                    "name": container["name"],
                    "image": container["image"],
                    "ready": False,
                    "restartCount": 0,
                    "state": {"terminated": {"exitCode": code, "reason": "Completed"}},
                }
            ],
        }
        with contextlib.suppress(Exception):  # deleted meanwhile
            self.api.patch("Pod", name, {"status": status}, sub="status")

    # exec: a command in the same container ---------------------------------------------
    async def exec(self, request: aiohttp.web.Request, pod: dict[str, Any]) -> Any:
        name = pod["metadata"]["name"]
        await asyncio.wait_for(self._started.setdefault(name, asyncio.Event()).wait(), 30)
        target = self._processes[name]
        await _chrooted(target.pid)
        command = request.query.getall("command", [])
        process = await asyncio.create_subprocess_exec(
            "nsenter",
            f"--target={target.pid}",
            "--mount",
            "--root",
            "--wd=/",
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        socket = await _websocket(request)
        code = await _pump(socket, process)
        await socket.send_bytes(bytes([3]) + json.dumps(exit_status(code)).encode())
        await socket.close()
        return socket


async def _chrooted(pid: int) -> None:
    """Until the container's process has its root (it sets up the mounts first)."""
    for _ in range(500):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/root") != "/":
                return
        await asyncio.sleep(0.02)
    raise RuntimeError(f"the helper process {pid} never reached its root")


async def _websocket(request: aiohttp.web.Request) -> aiohttp.web.WebSocketResponse:
    socket = aiohttp.web.WebSocketResponse(protocols=("v4.channel.k8s.io",))
    await socket.prepare(request)
    return socket


async def _pump(socket: aiohttp.web.WebSocketResponse, process: Any) -> int:
    """stdin from channel 0, stdout and stderr to channels 1 and 2, until the process ends."""

    async def outgoing(stream: asyncio.StreamReader, channel: int) -> None:
        while data := await stream.read(256 * 1024):
            await socket.send_bytes(bytes([channel]) + data)

    async def incoming() -> None:
        async for message in socket:
            if message.type != aiohttp.WSMsgType.BINARY or not message.data:
                continue
            if message.data[0] == 0 and process.stdin is not None:
                with contextlib.suppress(ConnectionError):
                    process.stdin.write(message.data[1:])
                    await process.stdin.drain()

    reader = asyncio.ensure_future(incoming())
    await asyncio.gather(outgoing(process.stdout, 1), outgoing(process.stderr, 2))
    code = await process.wait()
    reader.cancel()
    return code if code >= 0 else 128 - code


def exit_status(code: int) -> dict[str, Any]:
    """The ``Status`` the API sends on the error channel when an exec'd command ends."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {},
        "status": "Failure",
        "reason": "NonZeroExitCode",
        "message": f"command terminated with non-zero exit code: exit status {code}",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }
