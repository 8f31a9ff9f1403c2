"""Pure builders for the Kubernetes objects of a workspace, tested without a cluster.

Each returns a plain dict, the manifest as the API takes it (``kubectl apply -f`` or the
client's ``create_namespaced_*(body=...)``): easy to validate against the schemas and to
compare with a golden file. The input is the provider-neutral ``WorkspaceSpec`` the Docker
builders take; what a Docker container has and a Pod cannot is said where it would be.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from kubernetes.utils.quantity import parse_quantity

from dev8.core.naming import (
    LABEL_ROLE,
    LABEL_WORKSPACE_ID,
    VOLUME_MOUNTS,
    VOLUME_ROLES,
    container_name,
    labels,
    volume_name,
)
from dev8.core.quotas import GIB, quotas_from_environment
from dev8.core.resources import Resources
from dev8.providers.base import PORTS, WorkspaceSpec
from dev8.providers.container import (
    CAPABILITIES,
    CONTAINER_ROLE,
    NETWORK_ROLE,
    RUN_DIR,
    RUN_SIZE_MIB,
    container_environment,
)

MIB = 1024**2
CONTAINER = "workspace"  # the Pod's one container
# The Secret that carries the container's environment.
ENVIRONMENT_ROLE = "environment"
# The dev8 server's Pods carry this role label: the one peer a workspace's agent admits.
SERVER_ROLE = "server"
# The image writes dev8's files as user and group 1000 (dev8); the claims are made group-owned
# by it so that a new, empty volume is writable by the user.
WORKSPACE_GID = 1000
# The system claim holds every .deb the user installed (docs/packages.md) and has no quota of
# its own; sized here instead.
DEFAULT_SYSTEM_CLAIM = 10 * GIB
HEALTH_PATH = "/health"  # the agent's open endpoint (dev8.agent.httpapi)
# What a workspace may not reach: private addresses (RFC 1918, unique local), shared address
# space (some clouds give it to Pods and Services) and link-local (the cloud's metadata
# server, with the node's credentials). Everything else is the internet, open to it.
BLOCKED_EGRESS = (
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "169.254.0.0/16",
    "fc00::/7",
    "fe80::/10",
)
DNS_NAMESPACE = "kube-system"  # where the cluster's DNS runs, on every common distribution
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"  # set by the API on every namespace


@dataclass(frozen=True)
class ClusterOptions:
    """How a cluster is set up for dev8; the same for every workspace."""

    namespace: str = "dev8"
    storage_class: str | None = None  # None: the cluster's default StorageClass
    system_claim_bytes: int = DEFAULT_SYSTEM_CLAIM
    server_namespace: str | None = None  # None: the server runs in ``namespace``
    blocked_egress: tuple[str, ...] = BLOCKED_EGRESS


def workspace_manifests(spec: WorkspaceSpec, options: ClusterOptions) -> list[dict[str, Any]]:
    """Every object of a workspace, in the order to create them: the Pod last, so that what
    it mounts, reads and is confined by is there when it is scheduled."""
    return [
        *claim_manifests(spec, options),
        environment_secret(spec, options),
        network_policy(spec, options),
        pod_manifest(spec, options),
    ]


def object_name(workspace_id: str) -> str:
    """The Pod, its Secret and its NetworkPolicy share one name (kinds have their own names),
    the Docker container's, from the immutable id."""
    return container_name(workspace_id)


def claim_sizes(spec: WorkspaceSpec, options: ClusterOptions) -> dict[str, int]:
    """Bytes by volume role: the quotas the agent reads from the same environment, so that on
    Kubernetes the storage enforces them; the system volume has none and a size of its own."""
    return {**quotas_from_environment(spec.env), "system": options.system_claim_bytes}


def claim_manifests(spec: WorkspaceSpec, options: ClusterOptions) -> list[dict[str, Any]]:
    sizes = claim_sizes(spec, options)
    return [claim_manifest(spec, role, sizes[role], options) for role in VOLUME_ROLES]


def claim_manifest(
    spec: WorkspaceSpec, role: str, size: int, options: ClusterOptions
) -> dict[str, Any]:
    """A claim for one volume. ReadWriteOnce: a workspace's Pod and its helpers share a node.
    A larger quota later is a patch of ``storage`` (if the class allows expansion); a claim
    never shrinks."""
    claim: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": storage_quantity(size)}},
    }
    if options.storage_class is not None:
        claim["storageClassName"] = options.storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _metadata(volume_name(spec.workspace_id, role), spec, role, options),
        "spec": claim,
    }


def environment_secret(spec: WorkspaceSpec, options: ClusterOptions) -> dict[str, Any]:
    """The container's environment as a Secret the Pod reads at its start: tokens in a Pod's
    spec could be read by anyone allowed to list Pods. Rewritten before every new Pod, as
    Docker sets the environment at every create."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _metadata(object_name(spec.workspace_id), spec, ENVIRONMENT_ROLE, options),
        "type": "Opaque",
        "stringData": container_environment(spec),
    }


def pod_manifest(spec: WorkspaceSpec, options: ClusterOptions) -> dict[str, Any]:
    """The workspace's Pod. Stop deletes it, start makes a new one; its data is on the claims.

    No Kubernetes equivalent, left to the cluster: Docker's ``pids_limit`` (the kubelet's
    ``podPidsLimit``), its log rotation (the kubelet's ``containerLogMaxSize``) and host ports
    (``WorkspaceSpec.host_ports`` and ``published``: the server relays every stream through
    the agent at the Pod's IP). ``spec.image`` must be a reference the nodes can pull."""
    name = object_name(spec.workspace_id)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _metadata(name, spec, CONTAINER_ROLE, options),
        "spec": {
            "hostname": spec.name,
            "restartPolicy": "Always",  # Docker's "always" while running: a stop deletes the Pod
            # A member is root in the workspace: no token for the cluster's API, and no
            # variables naming the namespace's Services.
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": {
                "fsGroup": WORKSPACE_GID,
                # Change ownership only of a new volume, not a walk through every file of a
                # full home at each start.
                "fsGroupChangePolicy": "OnRootMismatch",
                # Docker applies its default seccomp profile; Kubernetes runs Unconfined
                # unless asked.
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [_container(spec, name)],
            "volumes": _volumes(spec),
        },
    }


def _container(spec: WorkspaceSpec, secret: str) -> dict[str, Any]:
    agent_port = PORTS["agent"]
    return {
        "name": CONTAINER,
        "image": spec.image,
        "imagePullPolicy": "IfNotPresent",
        "envFrom": [{"secretRef": {"name": secret}}],
        "ports": [{"name": "agent", "containerPort": agent_port, "protocol": "TCP"}],
        "resources": resource_requirements(spec.resources),
        "securityContext": {
            # No allowPrivilegeEscalation: false (no_new_privs): it would break sudo.
            "capabilities": {"drop": ["ALL"], "add": list(CAPABILITIES)},
        },
        # Ready when sshd and code-server answer. No liveness probe: the agent restarts
        # them itself, with backoff; the kubelet killing the container would fight it.
        "readinessProbe": {
            "httpGet": {"path": HEALTH_PATH, "port": agent_port},
            "periodSeconds": 5,
        },
        "volumeMounts": [
            *({"name": role, "mountPath": VOLUME_MOUNTS[role]} for role in VOLUME_ROLES),
            {"name": "run", "mountPath": RUN_DIR},
        ],
    }


def _volumes(spec: WorkspaceSpec) -> list[dict[str, Any]]:
    claims = [
        {"name": role, "persistentVolumeClaim": {"claimName": volume_name(spec.workspace_id, role)}}
        for role in VOLUME_ROLES
    ]
    # Docker's /run tmpfs; Kubernetes has no mode, nosuid or nodev for it, and counts what
    # it holds against the container's memory limit.
    run = {"name": "run", "emptyDir": {"medium": "Memory", "sizeLimit": f"{RUN_SIZE_MIB}Mi"}}
    return [*claims, run]


def resource_requirements(resources: Resources) -> dict[str, Any]:
    """Requests equal to limits (Guaranteed QoS): a workspace is scheduled only where its
    whole size fits, and is the last to be evicted when a node runs short."""
    amounts = {"cpu": cpu_quantity(resources.cpus), "memory": f"{resources.memory_mb}Mi"}
    return {"requests": dict(amounts), "limits": dict(amounts)}


def network_policy(spec: WorkspaceSpec, options: ClusterOptions) -> dict[str, Any]:
    """Only the dev8 server reaches the workspace, on the agent's port; the workspace reaches
    the cluster's DNS and the internet, not other workspaces nor private addresses.

    Docker's per-workspace bridge network has no equivalent; this policy is its place, and
    needs a network plugin that enforces policies. The kubelet's readiness probe comes from
    the node, which a policy never blocks."""
    workspace = {LABEL_WORKSPACE_ID: spec.workspace_id, LABEL_ROLE: CONTAINER_ROLE}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(object_name(spec.workspace_id), spec, NETWORK_ROLE, options),
        "spec": {
            "podSelector": {"matchLabels": workspace},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {
                    "from": [_server_peer(options)],
                    "ports": [{"protocol": "TCP", "port": PORTS["agent"]}],
                }
            ],
            "egress": [dns_rule(), {"to": internet_peers(options.blocked_egress)}],
        },
    }


def _server_peer(options: ClusterOptions) -> dict[str, Any]:
    peer: dict[str, Any] = {"podSelector": {"matchLabels": {LABEL_ROLE: SERVER_ROLE}}}
    if options.server_namespace is not None:
        peer["namespaceSelector"] = {
            "matchLabels": {NAMESPACE_NAME_LABEL: options.server_namespace}
        }
    return peer


def dns_rule() -> dict[str, Any]:
    return {
        "to": [{"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: DNS_NAMESPACE}}}],
        "ports": [{"protocol": protocol, "port": 53} for protocol in ("UDP", "TCP")],
    }


def internet_peers(blocked: tuple[str, ...]) -> list[dict[str, Any]]:
    """Every IPv4 and IPv6 address except ``blocked`` (each family's exceptions inside its own
    block, as the API requires). ``ValueError`` for what is not a network."""
    networks = [ipaddress.ip_network(cidr) for cidr in blocked]
    return [
        {
            "ipBlock": {
                "cidr": everything,
                "except": [str(n) for n in networks if n.version == version],
            }
        }
        for version, everything in ((4, "0.0.0.0/0"), (6, "::/0"))
    ]


def claim_bytes(claim: dict[str, Any]) -> int:
    """The bytes a claim asks for (its ``storage`` request, a quantity)."""
    requests = ((claim.get("spec") or {}).get("resources") or {}).get("requests") or {}
    return int(parse_quantity(requests.get("storage", "0")))


def storage_quantity(size: int) -> str:
    """Bytes as a Kubernetes quantity, in the largest binary unit that divides them."""
    for unit, factor in (("Gi", GIB), ("Mi", MIB)):
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


def cpu_quantity(cpus: float) -> str:
    """CPUs as a Kubernetes quantity: whole CPUs, else millicores (the API's precision)."""
    millis = round(cpus * 1000)
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def _metadata(name: str, spec: WorkspaceSpec, role: str, options: ClusterOptions) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": options.namespace,
        "labels": labels(spec.workspace_id, spec.owner, role, spec.name),
    }
