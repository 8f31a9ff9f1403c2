"""What the Kubernetes builders promise, including the API server's own rules that a schema
cannot check (name and label syntax, quantities), as properties over many workspaces.
Pure: no cluster, no API mock."""

from __future__ import annotations

import re
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kubernetes.utils.quantity import parse_quantity

from dev8.core.environment import LOOPBACK_ONLY
from dev8.core.naming import NAME_PATTERN, VOLUME_MOUNTS
from dev8.core.quotas import DEFAULT_QUOTAS, GIB, MIN_QUOTA, quota_environment
from dev8.core.resources import PRESETS, Resources
from dev8.core.users import USER_NAME_PATTERN
from dev8.providers.base import PORTS, WorkspaceSpec
from dev8.providers.docker.specs import container_spec
from dev8.providers.kubernetes.specs import (
    ClusterOptions,
    cpu_quantity,
    internet_peers,
    storage_quantity,
    workspace_manifests,
)

# The API server's rules (k8s.io/apimachinery/pkg/util/validation).
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS_SUBDOMAIN = re.compile(rf"{DNS_LABEL.pattern}(\.{DNS_LABEL.pattern})*")
LABEL_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
# The capabilities Pod Security's "baseline" level lets a Pod add.
BASELINE_CAPABILITIES = {
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}  # fmt: skip

workspace_ids = st.text("0123456789abcdef", min_size=12, max_size=12)
workspace_names = st.from_regex(NAME_PATTERN, fullmatch=True)
owners = st.from_regex(USER_NAME_PATTERN, fullmatch=True)
quotas = st.integers(min_value=MIN_QUOTA, max_value=64 * 1024 * GIB)
sizes = st.builds(
    Resources,
    cpus=st.integers(min_value=100, max_value=256_000).map(lambda m: m / 1000),
    memory_mb=st.integers(min_value=256, max_value=1024 * 1024),
)


def _by_kind(manifests: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for manifest in manifests:
        found.setdefault(manifest["kind"], []).append(manifest)
    return found


def _pod(spec: WorkspaceSpec, options: ClusterOptions | None = None) -> dict[str, Any]:
    return _by_kind(workspace_manifests(spec, options or ClusterOptions()))["Pod"][0]


def _valid_label_key(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    prefix_ok = not prefix or (len(prefix) <= 253 and DNS_SUBDOMAIN.fullmatch(prefix))
    return bool(prefix_ok and len(name) <= 63 and LABEL_NAME.fullmatch(name))


def _valid_label_value(value: str) -> bool:
    return value == "" or (len(value) <= 63 and bool(LABEL_NAME.fullmatch(value)))


# Properties over many workspaces ----------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(workspace_ids, workspace_names, owners)
def test_names_come_from_the_id_and_labels_are_valid(workspace_id: str, name: str, owner: str):
    spec = WorkspaceSpec(workspace_id, name, owner, "img", PRESETS["small"])
    manifests = workspace_manifests(spec, ClusterOptions())
    by_kind = _by_kind(manifests)
    assert [c["metadata"]["name"] for c in by_kind["PersistentVolumeClaim"]] == [
        f"dev8-{workspace_id}-home",
        f"dev8-{workspace_id}-workspace",
        f"dev8-{workspace_id}-system",
    ]
    for kind in ("Pod", "Secret", "NetworkPolicy"):
        assert by_kind[kind][0]["metadata"]["name"] == f"dev8-{workspace_id}"
    for manifest in manifests:
        metadata = manifest["metadata"]
        assert len(metadata["name"]) <= 63 and DNS_LABEL.fullmatch(metadata["name"])
        assert metadata["labels"]["dev.dev8.workspace-id"] == workspace_id
        assert metadata["labels"]["dev.dev8.owner"] == owner
        assert metadata["labels"]["dev.dev8.name"] == name
        for key, value in metadata["labels"].items():
            assert _valid_label_key(key) and _valid_label_value(value), (key, value)
    assert DNS_LABEL.fullmatch(by_kind["Pod"][0]["spec"]["hostname"])
    renamed = workspace_manifests(replace(spec, name="renamed"), ClusterOptions())
    assert [m["metadata"]["name"] for m in renamed] == [m["metadata"]["name"] for m in manifests]


@settings(max_examples=60, deadline=None)
@given(quotas, quotas, quotas)
def test_claim_sizes_are_the_quotas(home: int, workspace: int, system: int):
    env = quota_environment({"home": home, "workspace": workspace})
    spec = WorkspaceSpec("abc123def456", "demo", "alice", "img", PRESETS["small"], env=env)
    claims = _by_kind(workspace_manifests(spec, ClusterOptions(system_claim_bytes=system)))
    requested = {
        claim["metadata"]["labels"]["dev.dev8.role"]: claim["spec"]["resources"]["requests"]
        for claim in claims["PersistentVolumeClaim"]
    }
    assert {role: parse_quantity(r["storage"]) for role, r in requested.items()} == {
        "home": home,
        "workspace": workspace,
        "system": system,
    }


@settings(max_examples=60, deadline=None)
@given(sizes)
def test_requests_and_limits_are_the_size(resources: Resources):
    spec = WorkspaceSpec("abc123def456", "demo", "alice", "img", resources)
    amounts = _pod(spec)["spec"]["containers"][0]["resources"]
    assert amounts["requests"] == amounts["limits"]
    assert parse_quantity(amounts["limits"]["cpu"]) == Decimal(str(resources.cpus))
    assert parse_quantity(amounts["limits"]["memory"]) == resources.memory_mb * 1024**2


# The workspace's Pod ---------------------------------------------------------------------


def test_the_presets_are_the_pod_sizes():
    sizes = {
        name: _pod(WorkspaceSpec("i", "n", "o", "img", preset))["spec"]["containers"][0][
            "resources"
        ]["limits"]
        for name, preset in PRESETS.items()
    }
    assert sizes["small"] == {"cpu": "2", "memory": "4096Mi"}
    assert sizes["large"] == {"cpu": "8", "memory": "16384Mi"}
    assert cpu_quantity(1.5) == "1500m" and cpu_quantity(0.25) == "250m"


def test_claims_without_quotas_get_the_defaults_and_the_default_storage_class():
    spec = WorkspaceSpec("abc123def456", "demo", "alice", "img", PRESETS["small"])
    claims = _by_kind(workspace_manifests(spec, ClusterOptions()))["PersistentVolumeClaim"]
    home, workspace, system = (claim["spec"] for claim in claims)
    assert home["resources"]["requests"]["storage"] == storage_quantity(DEFAULT_QUOTAS["home"])
    assert workspace["resources"]["requests"]["storage"] == "100Gi"
    assert system["resources"]["requests"]["storage"] == "10Gi"
    assert all("storageClassName" not in claim for claim in (home, workspace, system))
    assert all(claim["accessModes"] == ["ReadWriteOnce"] for claim in (home, workspace, system))


def test_the_storage_class_is_configurable(spec: WorkspaceSpec, options: ClusterOptions):
    claims = _by_kind(workspace_manifests(spec, options))["PersistentVolumeClaim"]
    assert {claim["spec"]["storageClassName"] for claim in claims} == {"fast-ssd"}
    assert {claim["metadata"]["namespace"] for claim in claims} == {"dev8-workspaces"}


def test_storage_quantities():
    assert storage_quantity(30 * GIB) == "30Gi"
    assert storage_quantity(1536 * 1024**2) == "1536Mi"
    assert storage_quantity(MIN_QUOTA + 1) == str(MIN_QUOTA + 1)


def test_the_pod_mounts_its_claims_where_docker_mounts_its_volumes(spec: WorkspaceSpec):
    manifests = _by_kind(workspace_manifests(spec, ClusterOptions()))
    pod = manifests["Pod"][0]["spec"]
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"][:3]}
    assert list(claims.values()) == [
        c["metadata"]["name"] for c in manifests["PersistentVolumeClaim"]
    ]
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    docker = container_spec(spec)
    assert {claims[role]: mounts[role] for role in VOLUME_MOUNTS} == {
        volume: bound["bind"] for volume, bound in docker["volumes"].items()
    }
    assert mounts["run"] == "/run" and list(docker["tmpfs"]) == ["/run"]
    run = pod["volumes"][3]["emptyDir"]
    assert run["medium"] == "Memory"
    assert f"size={run['sizeLimit'].removesuffix('Mi')}m" in docker["tmpfs"]["/run"]


def test_the_pod_is_confined_as_the_docker_container_is(spec: WorkspaceSpec):
    pod = _pod(spec)["spec"]
    security = pod["containers"][0]["securityContext"]
    assert security["capabilities"]["drop"] == ["ALL"]
    assert security["capabilities"]["add"] == container_spec(spec)["cap_add"]
    assert set(security["capabilities"]["add"]) <= BASELINE_CAPABILITIES
    assert "allowPrivilegeEscalation" not in security, "no_new_privs would break sudo"
    assert pod["securityContext"]["fsGroup"] == 1000
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False
    for forbidden in ("hostNetwork", "hostPID", "hostIPC"):
        assert forbidden not in pod


def test_readiness_is_the_agents_health(spec: WorkspaceSpec):
    container = _pod(spec)["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"] == {"path": "/health", "port": PORTS["agent"]}
    assert container["ports"] == [{"name": "agent", "containerPort": 9000, "protocol": "TCP"}]
    assert "livenessProbe" not in container, "the agent restarts sshd and code-server itself"


def test_the_environment_is_dockers_and_only_in_the_secret(spec: WorkspaceSpec):
    manifests = _by_kind(workspace_manifests(spec, ClusterOptions()))
    secret, pod = manifests["Secret"][0], manifests["Pod"][0]
    assert secret["stringData"] == container_spec(spec)["environment"]
    assert secret["stringData"][LOOPBACK_ONLY] == "1"
    assert secret["stringData"]["ENVIRONMENT_ID"] == "abc123def456"
    assert secret["stringData"]["DEV8_QUOTA_HOME_BYTES"] == str(30 * GIB)
    container = pod["spec"]["containers"][0]
    assert container["envFrom"] == [{"secretRef": {"name": secret["metadata"]["name"]}}]
    assert "env" not in container
    for value in spec.env.values():
        assert len(value) < 2 or value not in repr(pod), "a secret in the Pod's spec"


def test_the_pod_is_made_last(spec: WorkspaceSpec):
    kinds = [m["kind"] for m in workspace_manifests(spec, ClusterOptions())]
    assert kinds[-1] == "Pod" and kinds.count("PersistentVolumeClaim") == 3


# The NetworkPolicy -----------------------------------------------------------------------


def _policy(spec: WorkspaceSpec, options: ClusterOptions | None = None) -> dict[str, Any]:
    manifests = _by_kind(workspace_manifests(spec, options or ClusterOptions()))
    return manifests["NetworkPolicy"][0]


def test_the_policy_selects_only_this_workspaces_pod(spec: WorkspaceSpec):
    policy = _policy(spec)["spec"]
    pod_labels = _pod(spec)["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= pod_labels.items()
    other = _pod(replace(spec, workspace_id="fedcba987654"))["metadata"]["labels"]
    assert not policy["podSelector"]["matchLabels"].items() <= other.items()
    assert policy["policyTypes"] == ["Ingress", "Egress"]


def test_only_the_server_reaches_the_agent_port(spec: WorkspaceSpec):
    (rule,) = _policy(spec)["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": PORTS["agent"]}]
    assert rule["from"] == [{"podSelector": {"matchLabels": {"dev.dev8.role": "server"}}}]
    # A workspace's own Pod never carries the server's role, so no workspace matches.
    assert _pod(spec)["metadata"]["labels"]["dev.dev8.role"] != "server"


def test_a_server_in_another_namespace_is_selected_by_both(spec: WorkspaceSpec):
    (rule,) = _policy(spec, ClusterOptions(server_namespace="dev8-system"))["spec"]["ingress"]
    # One peer with both selectors: the server's Pods in that namespace (two peers would
    # admit either, e.g. every Pod of that namespace).
    assert rule["from"] == [
        {
            "podSelector": {"matchLabels": {"dev.dev8.role": "server"}},
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "dev8-system"}},
        }
    ]


def test_egress_reaches_dns_and_the_internet_but_no_private_address(spec: WorkspaceSpec):
    dns, internet = _policy(spec)["spec"]["egress"]
    assert dns["to"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}
    ]
    assert {(p["protocol"], p["port"]) for p in dns["ports"]} == {("UDP", 53), ("TCP", 53)}
    assert "ports" not in internet
    v4, v6 = (peer["ipBlock"] for peer in internet["to"])
    assert v4["cidr"] == "0.0.0.0/0" and v6["cidr"] == "::/0"
    for private in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"):
        assert private in v4["except"]
    assert "fc00::/7" in v6["except"]
    assert not any("podSelector" in peer for peer in internet["to"])


def test_blocked_ranges_must_be_networks():
    assert internet_peers(("10.1.0.0/16",))[1]["ipBlock"]["except"] == []
    with pytest.raises(ValueError):
        internet_peers(("not-a-network",))
