"""The workspace's record on the cluster: its Secret (the environment), which also carries,
in an annotation, the Pod ``start`` makes. Pure builders and readers, no API calls."""

from __future__ import annotations

import json
from typing import Any

from dev8.core.errors import ProviderError
from dev8.providers.base import WorkspaceSpec
from dev8.providers.kubernetes.specs import ClusterOptions, environment_secret, pod_manifest
from dev8.providers.kubernetes.status import PUBLISHED_ANNOTATION

# The Secret's annotation that holds the Pod ``start`` makes, rendered by ``create``: a dev8
# upgrade that changes the template cannot change a workspace's claims behind its back.
POD_ANNOTATION = "dev.dev8.pod"


def workspace_record(spec: WorkspaceSpec, options: ClusterOptions) -> dict[str, Any]:
    """The workspace's Secret (its environment) carrying the Pod ``start`` makes."""
    pod = pod_manifest(spec, options)
    pod["metadata"]["annotations"] = {PUBLISHED_ANNOTATION: ",".join(spec.published)}
    secret = environment_secret(spec, options)
    secret["metadata"]["annotations"] = {POD_ANNOTATION: json.dumps(pod, sort_keys=True)}
    return secret


def stored_pod(record: dict[str, Any]) -> dict[str, Any]:
    """The Pod ``create`` rendered into the workspace's record."""
    text = ((record.get("metadata") or {}).get("annotations") or {}).get(POD_ANNOTATION)
    if not text:
        name = (record.get("metadata") or {}).get("name")
        raise ProviderError(f"the Secret {name} has no {POD_ANNOTATION} annotation; recreate it")
    pod: dict[str, Any] = json.loads(text)
    return pod
