"""A workspace's Pod and claims, as the Kubernetes builders make them, run for real with
Debian's podman (``podman kube play``): the agent becomes healthy, SSH works through the
agent's relay, and the data on the claims survives ``podman kube down`` and a new Pod from a
changed image (the rebuild row of the persistence contract, docs in DESIGN.md). No cluster:
podman plays the kubelet.

Real: the manifests from ``workspace_manifests`` for a relayed workspace (its environment as
the service makes it: agent token, SSH key, quotas, loopback-only services); the claims,
played as podman volumes; the Pod's image, environment (``envFrom`` the workspace's Secret),
capabilities and seccomp profile (both checked inside), resources, hostname and mounts; the
workspace image (the Docker engine's, copied into podman: there is no registry); OpenSSH
through the agent's ``/relay/2222``, as the server reaches it.

Converted (``tests/integration/kubernetes/podman.py`` says why for each):
- the Secret becomes a podman secret holding its ``data`` (podman 4.3 plays a Secret but
  cannot read it back for ``envFrom``);
- the agent's port is published on 127.0.0.1 at a free port (podman would publish it on
  0.0.0.0:9000; a cluster's server reaches the Pod IP instead);
- the NetworkPolicy is dropped: podman has no network policies;
- the second Pod is played without the claims, which exist (podman 4.3 refuses a claim whose
  volume exists; the provider's create keeps a claim that answers 409).
Not emulated by podman 4.3, or not checked here: the readiness probe (the test polls
``/health`` itself), ``fsGroup``, and the ``/run`` ``emptyDir`` with ``medium: Memory``, which
podman makes a volume on disk.
"""

from __future__ import annotations

import dataclasses
import secrets
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from dev8.cli.agent_relay import open_agent_relay
from dev8.cli.relay import SocketStream
from dev8.core.environment import AGENT_TOKEN, IDE_PASSWORD, LOOPBACK_ONLY
from dev8.core.naming import LABEL_OWNER, VOLUME_ROLES, new_workspace_id, volume_name
from dev8.core.quotas import GIB, quota_environment
from dev8.core.resources import PRESETS
from dev8.providers.base import PORTS, WorkspaceSpec
from dev8.providers.container import CAPABILITIES
from dev8.providers.kubernetes.specs import ClusterOptions, object_name, workspace_manifests
from tests.integration.helpers import Payload, forwarded, host_key_fingerprints, ssh, wait_healthy
from tests.integration.kubernetes import podman as pm
from tests.integration.owned import OWNER
from tests.net import free_port

pytestmark = pytest.mark.skipif(
    pm.PODMAN is None, reason="no podman: scripts/test-tools.sh installs Debian's podman"
)

PACKAGE = "dev8-podman-probe"  # a package the test builds: no network needed to install it
REBUILT_MARKER = "/etc/dev8-rebuilt"
START_TIMEOUT_S = 180.0  # generous: the second start restores the package first


class AgentDoor:
    """Streams into the workspace through its agent, as the server opens them."""

    def __init__(self, agent_url: str, token: str) -> None:
        self.agent_url, self.token = agent_url, token

    def open_tunnel(self, port: int) -> SocketStream:
        return open_agent_relay(self.agent_url, self.token, port)


def relayed_spec(image: str, public_key: str) -> WorkspaceSpec:
    """A workspace as the service specifies one in server mode (every workspace on
    Kubernetes is relayed): services on the container's loopback, reached through the agent."""
    return WorkspaceSpec(
        workspace_id=new_workspace_id(),
        name=f"play-{secrets.token_hex(3)}",
        owner=OWNER,
        image=image,
        resources=PRESETS["micro"],
        env={
            AGENT_TOKEN: secrets.token_urlsafe(24),
            IDE_PASSWORD: secrets.token_urlsafe(12),
            "SSH_PUBLIC_KEY": public_key,
            LOOPBACK_ONLY: "1",
            **quota_environment({"home": 2 * GIB, "workspace": 2 * GIB}),
        },
        published=("agent",),
    )


def confinement(ssh_port: int, key: Path) -> tuple[set[str], str]:
    """The capability bounding set and the seccomp mode (2: a filter) inside the workspace."""
    out = ssh(ssh_port, key, "setpriv -d; grep Seccomp: /proc/self/status").stdout.decode()
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    return set(fields["Capability bounding set"].strip().split(",")), fields["Seccomp"].strip()


def tiny_package(directory: Path) -> Path:
    """A .deb with one file and no dependencies, built with dpkg-deb."""
    root = directory / PACKAGE
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {PACKAGE}\nVersion: 1.0\nArchitecture: all\n"
        "Maintainer: dev8 tests <tests@dev8.invalid>\nDescription: dev8 podman test probe\n"
    )
    (root / "usr/share" / PACKAGE).mkdir(parents=True)
    (root / "usr/share" / PACKAGE / "probe").write_text("installed\n")
    deb = directory / f"{PACKAGE}.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "--build", str(root), str(deb)],
        check=True,
        capture_output=True,
    )
    return deb


def changed_image(podman: pm.Podman, base: str, context: Path) -> str:
    """``base`` plus one file: the new image a rebuild brings."""
    context.mkdir()
    (context / "marker").write_text("rebuilt\n")
    (context / "Containerfile").write_text(f"FROM {base}\nCOPY marker {REBUILT_MARKER}\n")
    tag = f"localhost/dev8-test/rebuilt:{OWNER}"
    podman("build", "--quiet", "--label", f"{LABEL_OWNER}={OWNER}", "-t", tag, str(context))
    return tag


class PlayedWorkspace:
    """One workspace played with podman: its Secret, its claims (first play only), its Pod."""

    def __init__(self, podman: pm.Podman, directory: Path, public_key: str) -> None:
        self.podman, self.directory, self.public_key = podman, directory, public_key
        self.agent_port = free_port()
        self.spec: WorkspaceSpec | None = None

    def play(self, image: str) -> None:
        """Create and start from ``image``: the Secret written again, the claims made if
        missing, a new Pod."""
        spec = self.spec = self._spec(image)
        manifests = workspace_manifests(spec, ClusterOptions())
        (secret,) = pm.of_kind(manifests, "Secret")
        name = object_name(spec.workspace_id)
        self.podman.attempt("secret", "rm", name)
        self.podman("secret", "create", name, "-", stdin=pm.secret_payload(secret))
        claims = [] if self.claims_exist() else pm.of_kind(manifests, "PersistentVolumeClaim")
        (pod,) = pm.of_kind(manifests, "Pod")
        self._write([*claims, pm.playable_pod(pod, self.agent_port)])
        self.podman("kube", "play", str(self.directory / "play.yaml"))

    def down(self) -> None:
        self.podman("kube", "down", str(self.directory / "play.yaml"))

    @property
    def agent_url(self) -> str:
        return f"http://127.0.0.1:{self.agent_port}"

    def door(self) -> AgentDoor:
        assert self.spec is not None
        return AgentDoor(self.agent_url, self.spec.env[AGENT_TOKEN])

    def volume_names(self) -> list[str]:
        assert self.spec is not None
        return [volume_name(self.spec.workspace_id, role) for role in VOLUME_ROLES]

    def remove_all(self) -> None:
        """Whatever exists of it: the Pod, the Secret, the volumes."""
        if self.spec is None:
            return
        name = object_name(self.spec.workspace_id)
        self.podman.attempt("pod", "rm", "--force", name)
        self.podman.attempt("secret", "rm", name)
        self.podman.attempt("volume", "rm", "--force", *self.volume_names())

    def _spec(self, image: str) -> WorkspaceSpec:
        if self.spec is None:
            return relayed_spec(image, self.public_key)
        return dataclasses.replace(self.spec, image=image)

    def claims_exist(self) -> bool:
        return all(
            self.podman.attempt("volume", "exists", volume).returncode == 0
            for volume in self.volume_names()
        )

    def _write(self, documents: list[dict[str, Any]]) -> None:
        text = yaml.safe_dump_all(documents, sort_keys=False)
        (self.directory / "play.yaml").write_text(text)


@pytest.fixture
def podman(tmp_path: Path) -> pm.Podman:
    return pm.podman_for_this_host(tmp_path)


@pytest.fixture
def played(podman: pm.Podman, tmp_path: Path, ssh_key: Path) -> PlayedWorkspace:
    return PlayedWorkspace(podman, tmp_path, ssh_key.with_suffix(".pub").read_text())


def test_a_pod_from_the_builders_runs_and_its_claims_survive_a_new_pod_from_a_new_image(
    podman: pm.Podman, played: PlayedWorkspace, workspace_image: str, ssh_key: Path, tmp_path: Path
):
    """podman plays the kubelet (see the module's docstring for what is converted): the
    workspace starts healthy and confined as the Pod says, SSH through the agent works, and
    after ``kube down`` and a new Pod from a changed image the files in /home/dev8 and
    /workspace, an apt-installed package and the SSH host identity are all there, and the
    image's change is."""
    base = pm.copy_from_docker(podman, workspace_image)
    rebuilt = changed_image(podman, base, tmp_path / "context")
    try:
        played.play(base)
        wait_healthy(played.agent_port, timeout=START_TIMEOUT_S)
        payload = Payload("podman")
        with forwarded(played.door(), PORTS["ssh"]) as ssh_port:
            assert confinement(ssh_port, ssh_key) == (set(map(str.lower, CAPABILITIES)), "2")
            payload.write(ssh_port, ssh_key)
            deb = tiny_package(tmp_path)
            ssh(ssh_port, ssh_key, f"cat > /tmp/{deb.name}", stdin=deb.read_bytes())
            ssh(ssh_port, ssh_key, f"sudo apt-get install -y -q /tmp/{deb.name}")
            identity = host_key_fingerprints(ssh_port)
            assert identity
        played.down()
        assert played.claims_exist(), "kube down keeps the claims' volumes"

        played.play(rebuilt)
        wait_healthy(played.agent_port, timeout=START_TIMEOUT_S)
        with forwarded(played.door(), PORTS["ssh"]) as ssh_port:
            payload.check(ssh_port, ssh_key)
            status = ssh(ssh_port, ssh_key, f"dpkg-query -W -f '${{Status}}' {PACKAGE}")
            assert status.stdout == b"install ok installed"
            probe = ssh(ssh_port, ssh_key, f"cat /usr/share/{PACKAGE}/probe").stdout
            assert probe == b"installed\n"
            assert ssh(ssh_port, ssh_key, f"cat {REBUILT_MARKER}").stdout == b"rebuilt\n"
            assert host_key_fingerprints(ssh_port) == identity
    finally:
        played.remove_all()  # before the image its Pod may still use
        podman.attempt("rmi", "--force", rebuilt)
