"""Helper jobs (``VolumeAccess``) and claim expansion on the Kubernetes provider, against the
API mock over real HTTP, the test playing the kubelet (``apimock``) and, for helper Pods, the
container runtime (``helpernode``: the Pod's real command under chroot in a private mount
namespace, this machine's tools instead of an image). API mock: no real cluster."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
from pathlib import Path

import pytest
from kubernetes.client.exceptions import ApiException

from dev8.backup import scripts
from dev8.core.errors import (
    ClaimNotExpandable,
    Conflict,
    HostPathUnsupported,
    ImageNotFound,
    InvalidInput,
    ProviderError,
)
from dev8.core.naming import HELPER_ROLE, LABEL_ROLE, LABEL_WORKSPACE_ID, volume_name
from dev8.core.quotas import GIB, quota_environment
from dev8.core.resources import PRESETS
from dev8.providers.base import (
    HelperJob,
    HelperMount,
    InteractiveExec,
    VolumeAccess,
    WorkspaceSpec,
)
from tests.integration.kubernetes.apimock import Cluster

IMAGE = "registry.test/dev8/workspace:1"
HELPER_IMAGE = "registry.test/dev8/helper:1"
WORKSPACE = "k8shelpers01"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or subprocess.run(["unshare", "--mount", "true"]).returncode != 0,
    reason="the stand-in runtime needs root and mount namespaces",
)


def job(argv: list[str], mounts: tuple[HelperMount, ...] = (), **extra: object) -> HelperJob:
    return HelperJob(WORKSPACE, "alice", "test", HELPER_IMAGE, argv, mounts, **extra)  # type: ignore[arg-type]


def helper_pods(cluster: Cluster) -> list[str]:
    selector = f"{LABEL_WORKSPACE_ID}={WORKSPACE},{LABEL_ROLE}={HELPER_ROLE}"
    return [pod["metadata"]["name"] for pod in cluster.api.list("Pod", selector)]


def test_the_provider_is_volume_access(cluster: Cluster):
    assert isinstance(cluster.provider, VolumeAccess)


def test_a_job_gets_its_stdin_and_gives_stdout_and_stderr_apart(cluster: Cluster):
    """API mock: no real cluster. The secret reaches the job on stdin (not in the Pod's
    spec), stdout and stderr come apart, stderr line by line, and the Pod is deleted."""
    lines: list[str] = []
    script = 'read -r secret; echo "out:$secret"; echo one >&2; echo two >&2; exit 3'
    result = cluster.provider.run_helper(
        job(["bash", "-c", script], stdin=b"s3cret\n"), lines.append
    )
    assert (result.exit_code, result.stdout, lines) == (3, b"out:s3cret\n", ["one", "two"])
    assert result.error_tail() == "two"
    created = [p for m, p in cluster.server.mock.calls if m == "POST" and p.endswith("/pods")]
    assert created and helper_pods(cluster) == []
    for pod in cluster.server.mock.objects.values():  # no secret in any stored object
        assert "s3cret" not in str(pod)


def test_a_backup_and_a_restore_through_volume_access(cluster: Cluster, tmp_path: Path):
    """API mock: no real cluster. The real backup script archives a claim into a file of
    this machine (streamed out of the helper's FIFO through exec), and the real extract
    script restores that file (streamed in) into another claim: the same tree, hashed the
    same on both sides."""
    node = cluster.server.mock.helper_node
    assert node is not None
    source = node.claim(volume_name(WORKSPACE, "home"))
    (source / "notes").mkdir()
    (source / "notes" / "a.txt").write_text("hello from the claim\n")
    (source / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    archive = tmp_path / "home.tar.zst"
    archive.touch()
    backup = job(
        scripts.backup_argv("zstd"),
        (
            HelperMount(scripts.SOURCE, volume=volume_name(WORKSPACE, "home")),
            HelperMount(scripts.ARCHIVE, host_path=str(archive), read_only=False),
        ),
    )
    lines: list[str] = []
    result = cluster.provider.run_helper(backup, lines.append)
    assert result.exit_code == 0, result.stderr
    assert any(line.startswith("dev8-scan entries=4 files=2") for line in lines), lines
    listed = subprocess.run(
        ["tar", "--zstd", "-tf", str(archive)], capture_output=True, check=True, text=True
    ).stdout.split()
    assert {"./notes/a.txt", "./big.bin"} <= set(listed)

    target = volume_name(WORKSPACE, "workspace")
    restore = job(
        scripts.extract_argv("zstd", archive.stat().st_size, "tok1"),
        (
            HelperMount("/target", volume=target, read_only=False),
            HelperMount(scripts.ARCHIVE, host_path=str(archive)),
        ),
        env={"DEV8_SWAP_PY": scripts.swap_program()},
    )
    found: dict[str, str] = {}

    def on_line(line: str) -> None:
        parsed = scripts.parse_line(line)
        if parsed and parsed[0] == "result":
            found.update(parsed[1])

    result = cluster.provider.run_helper(restore, on_line)
    assert result.exit_code == 0, result.stderr
    assert found["sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    incoming = node.claim(target) / scripts.INCOMING.removeprefix("/target/")
    assert (incoming / "notes" / "a.txt").read_text() == "hello from the claim\n"
    assert (incoming / "big.bin").read_bytes() == (source / "big.bin").read_bytes()
    assert helper_pods(cluster) == []


def test_a_read_only_claim_cannot_be_written(cluster: Cluster):
    """API mock: no real cluster. The Pod's readOnly reaches the mount."""
    mount = HelperMount("/data", volume=volume_name(WORKSPACE, "home"))
    result = cluster.provider.run_helper(job(["bash", "-c", "echo x > /data/f"], (mount,)))
    assert result.exit_code != 0 and b"Read-only" in result.stderr


def test_a_failed_helper_is_one_clear_line(cluster: Cluster):
    """API mock: no real cluster. An image the nodes cannot pull is ``ImageNotFound`` and
    the Pod is deleted; a local image id is refused before anything is made."""
    cluster.kubelet.unpullable.add(HELPER_IMAGE)
    with pytest.raises(ImageNotFound, match="cannot pull the helper image"):
        cluster.provider.run_helper(job(["true"]))
    assert helper_pods(cluster) == []
    with pytest.raises(ImageNotFound):
        cluster.provider.run_helper(
            HelperJob(WORKSPACE, "alice", "test", "sha256:" + "0" * 64, ["true"])
        )


def test_a_helper_past_its_deadline_is_stopped_and_deleted(cluster: Cluster):
    """API mock: no real cluster. The job sleeps past its deadline: dev8 says so in one line,
    deletes the Pod (its process killed) and the Pod carries activeDeadlineSeconds too."""
    with pytest.raises(ProviderError, match="did not finish within 1 s; stopped"):
        cluster.provider.run_helper(job(["sleep", "60"], deadline_s=1.0))
    assert helper_pods(cluster) == []
    node = cluster.server.mock.helper_node
    assert node is not None and len(node.killed) == 1


def test_a_host_directory_is_refused_before_anything_is_made(cluster: Cluster, tmp_path: Path):
    """API mock: no real cluster."""
    mount = HelperMount("/repo", host_path=str(tmp_path))
    with pytest.raises(HostPathUnsupported, match="remote snapshot repository"):
        cluster.provider.run_helper(job(["true"], (mount,)))
    assert not [c for c in cluster.server.mock.calls if c[0] == "POST"]


def test_stale_helpers_are_removed(cluster: Cluster):
    """API mock: no real cluster. A helper Pod of a dev8 process that is gone is deleted."""
    from dev8.providers.kubernetes.jobs import helper_pod

    pod = helper_pod(
        job(["true"]),
        f"dev8-{WORKSPACE}-test-aaaaaa",
        (),
        client=f"{socket.gethostname()}:999999999",
        node=None,
        options=cluster.provider.settings.options,
    )
    cluster.api.create(pod)
    assert cluster.provider.remove_stale_helpers(WORKSPACE) == [pod["metadata"]["name"]]
    assert helper_pods(cluster) == []


# Claims grow with a raised quota ---------------------------------------------------------


def spec(home_gib: int) -> WorkspaceSpec:
    return WorkspaceSpec(
        workspace_id=WORKSPACE,
        name="quota",
        owner="alice",
        image=IMAGE,
        resources=PRESETS["small"],
        env=quota_environment({"home": home_gib * GIB}),
        published=("agent",),
    )


def claim_size(cluster: Cluster, role: str) -> str:
    claim = cluster.api.get("PersistentVolumeClaim", volume_name(WORKSPACE, role)) or {}
    return str(claim["spec"]["resources"]["requests"]["storage"])


def test_a_raised_quota_expands_the_claim_and_a_shrink_is_refused(cluster: Cluster):
    """API mock: no real cluster. As the service does it (check, remove, create): the home
    claim is patched to the new size, the others kept; a smaller quota is one line and
    nothing changes."""
    provider = cluster.provider
    provider.create(spec(10))
    assert claim_size(cluster, "home") == "10Gi"
    provider.check_quotas(WORKSPACE, {"home": 20 * GIB})
    provider.remove(WORKSPACE)
    provider.create(spec(20))
    assert claim_size(cluster, "home") == "20Gi"
    patches = [p for m, p in cluster.server.mock.calls if m == "PATCH"]
    assert patches == [
        f"/api/v1/namespaces/dev8-tests/persistentvolumeclaims/dev8-{WORKSPACE}-home"
    ]
    with pytest.raises(InvalidInput, match="cannot shrink a claim"):
        provider.check_quotas(WORKSPACE, {"home": 5 * GIB})
    assert claim_size(cluster, "home") == "20Gi"


def test_a_storage_class_that_cannot_grow_is_said(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
):
    """API mock: no real cluster; the patch's refusal is a stand-in (the mock has no storage
    classes): the API's 403 with its message for a class without allowVolumeExpansion
    becomes ``ClaimNotExpandable``."""
    cluster.provider.create(spec(10))
    cluster.provider.remove(WORKSPACE)
    message = "only dynamically provisioned pvc can be resized and the storageclass that "
    message += "provisions the pvc must support resize"

    refusal = ApiException(status=403, reason="Forbidden")
    refusal.body = json.dumps({"kind": "Status", "message": message})
    monkeypatch.setattr(cluster.provider.api, "patch", _raiser(refusal))
    with pytest.raises(ClaimNotExpandable, match="allowVolumeExpansion"):
        cluster.provider.create(spec(20))


def _raiser(exc: Exception):  # type: ignore[no-untyped-def]
    def raise_it(*args: object, **kwargs: object) -> None:
        raise exc

    return raise_it


# An attached `dev8 exec` ---------------------------------------------------------------


def test_an_attached_exec_is_kubectl_exec_on_the_running_pod(cluster: Cluster):
    """API mock: no real cluster; the command line is checked, not run (no cluster for
    kubectl to reach). Not running: ``Conflict``."""
    provider = cluster.provider
    provider.create(spec(10))
    with pytest.raises(Conflict, match="not running"):
        provider.exec_argv(WORKSPACE, ["bash"], user="dev8", workdir="/workspace", tty=True)
    provider.start(WORKSPACE)
    argv = provider.exec_argv(WORKSPACE, ["bash"], user="dev8", workdir="/workspace", tty=True)
    assert isinstance(provider, InteractiveExec)
    assert argv[0].endswith("kubectl") and argv[1:6] == [
        "--namespace=dev8-tests",
        "exec",
        "-i",
        "-t",
        f"dev8-{WORKSPACE}",
    ]
    assert argv[6:] == ["--container=workspace", "--", "runuser", "-u", "dev8", "--", "env",
                        "--chdir=/workspace", "HOME=/home/dev8", "USER=dev8", "LOGNAME=dev8",
                        "bash"]  # fmt: skip
