"""Debian's podman as a stand-in kubelet: the Kubernetes builders' manifests turned into the
input of ``podman kube play`` (podman 4.3, Debian bookworm), changed only where podman
cannot take them as they are. Each change is a pure function here and says why.

Running rootful on this host needs three settings, all in one place (``Podman``):

- cgroup v1: ``--runtime runc --cgroup-manager=cgroupfs`` (podman's defaults are crun and
  systemd, neither of which works here);
- ulimits: podman asks the runtime for ``nofile=1048576`` and a large ``nproc``, which a
  process without ``CAP_SYS_RESOURCE`` (this machine's root) cannot raise to; a
  ``containers.conf`` of the test's own (``CONTAINERS_CONF``, which replaces the system's
  files) sets them to what podman itself runs with;
- podman's pause image is built from ``catatonit`` (scripts/test-tools.sh installs it).
"""

from __future__ import annotations

import base64
import copy
import json
import os
import resource
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dev8.providers.base import PORTS

PODMAN = shutil.which("podman")
COPY_REPOSITORY = "localhost/dev8-test/workspace"  # the Docker image's copy in podman
CGROUP_V2_MARKER = Path("/sys/fs/cgroup/cgroup.controllers")
PID_MAX = Path("/proc/sys/kernel/pid_max")


@dataclass(frozen=True)
class Podman:
    """The ``podman`` command with this host's settings."""

    flags: tuple[str, ...]
    env: dict[str, str]

    def __call__(
        self, *args: str, stdin: bytes | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[bytes]:
        """Run ``podman ARGS``; ``AssertionError`` with podman's message if it fails."""
        result = self.attempt(*args, stdin=stdin, timeout=timeout)
        if result.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)}: {result.stderr.decode()[-2000:]}")
        return result

    def attempt(
        self, *args: str, stdin: bytes | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[bytes]:
        """Run ``podman ARGS`` whatever its outcome (cleanup of what may be gone)."""
        return subprocess.run(
            ["podman", *self.flags, *args],
            input=stdin,
            capture_output=True,
            env=self.env,
            timeout=timeout,
        )


def podman_for_this_host(config_dir: Path) -> Podman:
    conf = config_dir / "containers.conf"
    conf.write_text(containers_conf(*ulimits()))
    cgroup_v1 = not CGROUP_V2_MARKER.exists()
    flags = ("--runtime", "runc", "--cgroup-manager", "cgroupfs") if cgroup_v1 else ()
    return Podman(flags, {**os.environ, "CONTAINERS_CONF": str(conf)})


def ulimits() -> tuple[int, int]:
    """Open files and processes as this process may have them, processes at most the
    kernel's ``pid_max``: podman runs itself with no more (measured here), and the runtime
    it starts cannot raise a limit."""
    files = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    processes = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    pid_max = int(PID_MAX.read_text())
    if processes == resource.RLIM_INFINITY or processes > pid_max:
        processes = pid_max
    return files, processes


def containers_conf(files: int, processes: int) -> str:
    return (
        "[containers]\n"
        f'default_ulimits = ["nofile={files}:{files}", "nproc={processes}:{processes}"]\n'
    )


def copy_from_docker(podman: Podman, image_id: str) -> str:
    """A reference to the Docker engine's image ``image_id`` (``sha256:...``) in podman's
    storage (no registry here: copied from the engine, about a minute for the 2 GB image).
    The copy keeps the image's id, so it is kept for the next run and made again only when
    the image changed; older copies are removed then."""
    reference = f"{COPY_REPOSITORY}:{image_id.removeprefix('sha256:')[:12]}"
    if podman.attempt("image", "exists", reference).returncode == 0:
        return reference
    listed = podman("images", "--format", "{{.Repository}}:{{.Tag}}", COPY_REPOSITORY)
    for stale in listed.stdout.decode().split():
        podman.attempt("rmi", stale)
    podman("pull", "--quiet", f"docker-daemon:{image_id}", timeout=600)
    copied = image_id.removeprefix("sha256:")
    podman("untag", copied)  # the name the pull gave it, docker.io/library/sha256:<id>
    podman("tag", copied, reference)
    return reference


def of_kind(manifests: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [manifest for manifest in manifests if manifest["kind"] == kind]


def secret_payload(secret: dict[str, Any]) -> bytes:
    """The Secret as podman 4.3's ``envFrom: secretRef`` reads a podman secret: a JSON object
    of base64 values (the Secret's ``data``, as the API server stores ``stringData``).
    podman 4.3 can play a Secret, but stores it as YAML and then fails to read it for
    ``envFrom`` ("not valid JSON"), so the test makes the podman secret itself."""
    values = secret.get("stringData", {})
    return json.dumps(
        {name: base64.b64encode(value.encode()).decode() for name, value in values.items()}
    ).encode()


def playable_pod(pod: dict[str, Any], agent_host_port: int) -> dict[str, Any]:
    """The Pod with its agent port published on 127.0.0.1 only: podman 4.3 publishes every
    ``containerPort`` without a ``hostPort`` on 0.0.0.0 at the same number, where a cluster
    publishes none (its server reaches the Pod IP). Everything else as built."""
    playable = copy.deepcopy(pod)
    for port in playable["spec"]["containers"][0]["ports"]:
        if port["containerPort"] == PORTS["agent"]:
            port.update(hostIP="127.0.0.1", hostPort=agent_host_port)
    return playable
