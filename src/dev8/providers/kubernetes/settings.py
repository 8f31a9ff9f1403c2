"""The Kubernetes backend's settings, from ``DEV8_KUBERNETES_*`` environment variables, read
once when the provider is made (as the Docker backend reads ``DEV8_WORKSPACE_SUBNETS``).
Where the API is comes from the standard places: ``KUBECONFIG`` (or ``~/.kube/config``), or
the Pod's service account when the server runs in the cluster."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from dev8.core.errors import InvalidInput
from dev8.core.quotas import parse_size
from dev8.providers.kubernetes.specs import DEFAULT_SYSTEM_CLAIM, ClusterOptions

NAMESPACE = "DEV8_KUBERNETES_NAMESPACE"
STORAGE_CLASS = "DEV8_KUBERNETES_STORAGE_CLASS"
SYSTEM_CLAIM = "DEV8_KUBERNETES_SYSTEM_CLAIM"
SERVER_NAMESPACE = "DEV8_KUBERNETES_SERVER_NAMESPACE"
CONTEXT = "DEV8_KUBERNETES_CONTEXT"
START_TIMEOUT = "DEV8_KUBERNETES_START_TIMEOUT"
VARIABLES = (NAMESPACE, STORAGE_CLASS, SYSTEM_CLAIM, SERVER_NAMESPACE, CONTEXT, START_TIMEOUT)
# A new Pod may wait for a node and pull a large image: minutes, not seconds.
DEFAULT_START_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class KubernetesSettings:
    options: ClusterOptions
    context: str | None = None  # the kubeconfig context; None: its current one
    start_timeout_s: float = DEFAULT_START_TIMEOUT_S  # for a new Pod to run


def kubernetes_settings(environ: Mapping[str, str] | None = None) -> KubernetesSettings:
    env = os.environ if environ is None else environ
    options = ClusterOptions(
        namespace=env.get(NAMESPACE) or ClusterOptions.namespace,
        storage_class=env.get(STORAGE_CLASS) or None,
        system_claim_bytes=_size(env.get(SYSTEM_CLAIM)),
        server_namespace=env.get(SERVER_NAMESPACE) or None,
    )
    return KubernetesSettings(
        options=options,
        context=env.get(CONTEXT) or None,
        start_timeout_s=_seconds(env.get(START_TIMEOUT)),
    )


def _size(text: str | None) -> int:
    if not text:
        return DEFAULT_SYSTEM_CLAIM
    try:
        return parse_size(text)
    except InvalidInput as exc:
        raise InvalidInput(f"{SYSTEM_CLAIM}: {exc.message}") from exc


def _seconds(text: str | None) -> float:
    if not text:
        return DEFAULT_START_TIMEOUT_S
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if seconds <= 0:
        raise InvalidInput(f"{START_TIMEOUT}={text} must be a positive number of seconds")
    return seconds
