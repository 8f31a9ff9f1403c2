"""Pure builders for helper jobs on a cluster (``VolumeAccess``): the Pod that runs one
``HelperJob`` on a workspace's claims, the namespace's two NetworkPolicies that confine
helpers, and the commands that carry a file of this machine to or from a helper.

A Pod, not a batch/v1 Job: dev8 waits for every helper and deletes it when done, also when
interrupted, and a failed helper is reported, never retried (a Job's controller would retry
it, keep it after the end and need RBAC on another API group for nothing dev8 uses).

This machine's files are not the node's: a ``HelperMount`` of a host *file* becomes a FIFO at
its target in the helper, fed or drained through an exec session by the provider (an
archive streams through the API, never lands on the node). A host *directory* (a local
snapshot repository, a restore's scratch tree) has no such form and is refused by the
provider before anything is created.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from dev8.core.naming import HELPER_ROLE, LABEL_ROLE, labels
from dev8.providers.base import HelperJob
from dev8.providers.kubernetes.specs import ClusterOptions, dns_rule, internet_peers

HELPER_CONTAINER = "helper"
# Which of the namespace's helper policies applies: "none" (no traffic at all) or
# "internet" (DNS and the internet, as a workspace: a snapshot to a remote repository).
LABEL_NETWORK = "dev.dev8.network"
# The dev8 process that runs the helper (``hostname:pid``): a helper of one gone is stale.
CLIENT_ANNOTATION = "dev.dev8.client"
PURPOSE_ANNOTATION = "dev.dev8.purpose"
# The capabilities a helper needs on files of several owners (read any, restore owners,
# modes and times); Docker's default set gives them, and more, to its helpers.
HELPER_CAPABILITIES = ("CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID")
# Docker's helper bounds (providers.docker.specs): 4 GiB, half a workspace's CPU weight,
# here a request of a quarter CPU and a limit of one (a Pod has no relative weight).
HELPER_RESOURCES = {
    "requests": {"cpu": "250m", "memory": "256Mi"},
    "limits": {"cpu": "1", "memory": "4Gi"},
}
# Run by bash as the container's command, before the job: make the FIFOs named before
# "--", then wait for the header dev8 sends once attached (the length of the job's stdin),
# so that no output is written before someone reads it; then run the job, on exactly that
# many bytes of stdin (a pipe, never a file) or on /dev/null.
WRAPPER = """set -u
while [ "$1" != -- ]; do mkfifo -- "$1" || exit 125; shift; done
shift
IFS= read -r size || exit 125
case "$size" in ''|*[!0-9]*) exit 125;; esac
if [ "$size" -eq 0 ]; then exec "$@" < /dev/null; fi
head -c "$size" | "$@"
"""


def helper_pod(
    job: HelperJob,
    name: str,
    fifos: tuple[str, ...],
    *,
    client: str,
    node: str | None,
    options: ClusterOptions,
) -> dict[str, Any]:
    """The Pod that runs ``job``: its claims mounted, ``fifos`` made at their paths, confined
    as a workspace is and more (no capability it does not need, no privilege escalation, no
    token for the API), bounded in memory, CPU and time (``activeDeadlineSeconds``: the
    kubelet ends it even if dev8 is gone). ``node``: the node where a workspace Pod holds
    one of its ReadWriteOnce claims, which the helper can only mount there."""
    volumes = [
        {
            "name": f"volume-{index}",
            "persistentVolumeClaim": {"claimName": mount.volume, "readOnly": mount.read_only},
        }
        for index, mount in enumerate(job.mounts)
        if mount.volume
    ]
    mounts = [
        {"name": f"volume-{index}", "mountPath": mount.target, "readOnly": mount.read_only}
        for index, mount in enumerate(job.mounts)
        if mount.volume
    ]
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "activeDeadlineSeconds": max(1, math.ceil(job.deadline_s)),
        "terminationGracePeriodSeconds": 5,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [_container(job, fifos, mounts)],
        "volumes": volumes,
    }
    if node is not None:
        spec["affinity"] = same_node(node)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": options.namespace,
            "labels": {
                **labels(job.workspace_id, job.owner, HELPER_ROLE),
                LABEL_NETWORK: "internet" if job.network else "none",
            },
            "annotations": {CLIENT_ANNOTATION: client, PURPOSE_ANNOTATION: job.purpose},
        },
        "spec": spec,
    }


def _container(
    job: HelperJob, fifos: tuple[str, ...], mounts: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "name": HELPER_CONTAINER,
        "image": job.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["bash", "-c", WRAPPER, "dev8-helper", *fifos, "--", *job.argv],
        "env": [{"name": key, "value": value} for key, value in sorted(job.env.items())],
        # Attached by dev8 for the header and the job's stdin; closed when dev8 detaches.
        "stdin": True,
        "stdinOnce": True,
        "resources": HELPER_RESOURCES,
        "securityContext": {
            "runAsUser": 0,  # volumes hold files of several owners; the system one is root's
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"], "add": list(HELPER_CAPABILITIES)},
        },
        "volumeMounts": mounts,
    }


def same_node(node: str) -> dict[str, Any]:
    """Scheduled only on ``node`` (by the scheduler, unlike ``nodeName``: resources counted,
    taints honoured); ``matchFields`` names the node itself, not a label it may lack."""
    term = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}
        }
    }


def helper_network_policies(options: ClusterOptions) -> list[dict[str, Any]]:
    """The namespace's policies for helpers: none reachable; one without network reaches
    nothing, one with network the cluster's DNS and the internet (not private ranges)."""
    offline = _helper_policy("dev8-helpers-offline", "none", [], options)
    online = _helper_policy(
        "dev8-helpers-internet",
        "internet",
        [dns_rule(), {"to": internet_peers(options.blocked_egress)}],
        options,
    )
    return [offline, online]


def _helper_policy(
    name: str, network: str, egress: list[dict[str, Any]], options: ClusterOptions
) -> dict[str, Any]:
    selector = {LABEL_ROLE: HELPER_ROLE, LABEL_NETWORK: network}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": name,
            "namespace": options.namespace,
            "labels": {LABEL_ROLE: HELPER_ROLE},
        },
        "spec": {
            "podSelector": {"matchLabels": selector},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [],
            "egress": egress,
        },
    }


# Transfers may begin before the wrapper has made its FIFOs: they wait for them (the Pod's
# deletion ends a wait that would never end).
_WAIT_FIFO = 'until [ -p "$1" ]; do sleep 0.1; done; '


def fill_fifo_command(path: str, size: int) -> list[str]:
    """Run in the helper: write the next ``size`` bytes of stdin into the FIFO ``path``
    (a length, not stdin's end: closing stdin needs the newest exec protocol)."""
    return ["sh", "-c", _WAIT_FIFO + 'head -c "$2" > "$1"', "dev8-fill", path, str(size)]


def drain_fifo_command(path: str) -> list[str]:
    """Run in the helper: copy the FIFO ``path`` to stdout until the job closes it."""
    return ["sh", "-c", _WAIT_FIFO + 'exec cat -- "$1"', "dev8-drain", path]


def claims_by_node(pods: list[dict[str, Any]]) -> Mapping[str, str]:
    """Claim name -> the node of the running Pod that mounts it, from workspace Pods."""
    found: dict[str, str] = {}
    for pod in pods:
        spec = pod.get("spec") or {}
        node = spec.get("nodeName")
        if not node or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        for volume in spec.get("volumes") or []:
            claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            if claim:
                found[claim] = node
    return found
