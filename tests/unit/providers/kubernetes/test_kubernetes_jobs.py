"""The helper Pod and the helpers' NetworkPolicies (``jobs``): validated against the schemas
of Kubernetes 1.30 and the newest ``kubernetes-validate`` ships (strict), compared with
golden files, and their confinement checked. Schemas, not a cluster."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from kubernetes_validate import utils as kubernetes_schemas
from tests.unit.providers.kubernetes.test_kubernetes_manifests import VERSIONS

from dev8.providers.base import HelperJob, HelperMount
from dev8.providers.kubernetes.jobs import (
    HELPER_CAPABILITIES,
    helper_network_policies,
    helper_pod,
)
from dev8.providers.kubernetes.specs import ClusterOptions

GOLDEN = Path(__file__).parent / "golden" / "jobs"
JOB = HelperJob(
    workspace_id="abc123def456",
    owner="alice",
    purpose="backup",
    image="registry.invalid/dev8/helper:1",
    argv=["bash", "-c", "tar -c . > /archive", "dev8-helper"],
    mounts=(
        HelperMount("/source", volume="dev8-abc123def456-home"),
        HelperMount("/archive", host_path="/srv/backups/home.tar.zst", read_only=False),
    ),
    env={"RESTIC_PROGRESS_FPS": "4"},
    deadline_s=3600.5,
)


def manifests(node: str | None = "node-7") -> list[dict]:
    options = ClusterOptions(namespace="dev8-workspaces")
    pod = helper_pod(
        JOB,
        "dev8-abc123def456-backup-0a0b0c",
        ("/archive",),
        client="vm:42",
        node=node,
        options=options,
    )
    return [pod, *helper_network_policies(options)]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("node", ["node-7", None])
def test_every_helper_manifest_is_valid(version: str, node: str | None):
    for manifest in manifests(node):
        kubernetes_schemas.validate(manifest, version, strict=True)


def test_helper_manifests_match_the_golden_files():
    """Regenerate: ``DEV8_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/providers/kubernetes``."""
    for manifest in manifests():
        path = GOLDEN / f"{manifest['kind'].lower()}-{manifest['metadata']['name']}.yaml"
        if os.environ.get("DEV8_UPDATE_GOLDEN") == "1":
            path.parent.mkdir(exist_ok=True)
            path.write_text(yaml.safe_dump(manifest, sort_keys=False))
        assert manifest == yaml.safe_load(path.read_text()), path.name


def test_a_helper_is_confined():
    pod = manifests()[0]["spec"]
    container = pod["containers"][0]
    assert pod["automountServiceAccountToken"] is False and pod["enableServiceLinks"] is False
    assert "hostNetwork" not in pod and pod["restartPolicy"] == "Never"
    assert pod["activeDeadlineSeconds"] == 3601
    assert container["securityContext"]["capabilities"] == {
        "drop": ["ALL"],
        "add": list(HELPER_CAPABILITIES),
    }
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["resources"]["limits"]["memory"] == "4Gi"
    # The claim read-only in both places; the host file is a FIFO, never a hostPath.
    assert pod["volumes"] == [
        {
            "name": "volume-0",
            "persistentVolumeClaim": {"claimName": "dev8-abc123def456-home", "readOnly": True},
        }
    ]
    assert "hostPath" not in str(pod) and "/srv/backups" not in str(pod)
    assert container["command"][4:6] == ["/archive", "--"]
    term = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["nodeSelectorTerms"][0]["matchFields"][0]["values"] == ["node-7"]


def test_the_helpers_policies_admit_nothing_in_and_only_what_a_job_needs_out():
    offline, online = manifests()[1:]
    assert offline["spec"]["ingress"] == offline["spec"]["egress"] == []
    assert online["spec"]["ingress"] == [] and online["spec"]["egress"]
    assert offline["spec"]["podSelector"]["matchLabels"]["dev.dev8.network"] == "none"
