"""The Kubernetes provider: a workspace is three PersistentVolumeClaims, a Secret with its
environment, a NetworkPolicy and, while it runs, a Pod (``specs`` builds them all).

What the Docker provider's container is, here is split in two: the Secret is the record that
the workspace exists (it carries the Pod to start, rendered at ``create``, in an annotation),
and the Pod is its running processes. ``stop`` deletes the Pod, ``start`` makes a new one
from the record, so a Pod lost with its node is made again by the next start on the same
claims. The record is built and read in ``records``, the Pod's state mapped in ``status``, API
failures in ``errors``.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from kubernetes.client.exceptions import ApiException

from dev8.core.errors import (
    ClaimNotExpandable,
    Conflict,
    ImageNotFound,
    InvalidInput,
    NotFound,
    OperationTimeout,
    ProviderError,
    WorkspaceCrashed,
)
from dev8.core.naming import LABEL_ROLE, LABEL_WORKSPACE_ID, VOLUME_ROLES, volume_name
from dev8.core.quotas import format_bytes
from dev8.core.states import ContainerState
from dev8.providers.base import ExecResult, RuntimeStatus, VolumeInfo, WorkspaceSpec
from dev8.providers.container import CONTAINER_ROLE
from dev8.providers.kubernetes import execute
from dev8.providers.kubernetes.client import KubeApi, connect
from dev8.providers.kubernetes.errors import api_errors, explain
from dev8.providers.kubernetes.helpers import KubernetesHelperJobs, claim_info
from dev8.providers.kubernetes.records import stored_pod, workspace_record
from dev8.providers.kubernetes.settings import KubernetesSettings, kubernetes_settings
from dev8.providers.kubernetes.specs import (
    CONTAINER,
    ENVIRONMENT_ROLE,
    claim_bytes,
    claim_manifests,
    network_policy,
    object_name,
    storage_quantity,
)
from dev8.providers.kubernetes.status import (
    IMAGE_ERRORS,
    container_state,
    not_running_status,
    pod_status,
    problem,
    waiting_reason,
)

POLL_S = 0.25  # how often a Pod being made or deleted is looked at again
GONE_MARGIN_S = 30  # beyond the grace period, for the kubelet to report the Pod gone
# A Pod in these states never runs again: start replaces it.
ENDED = (ContainerState.EXITED, ContainerState.UNKNOWN)


class KubernetesProvider(KubernetesHelperJobs):
    name = "kubernetes"

    def __init__(
        self, api: KubeApi | None = None, settings: KubernetesSettings | None = None
    ) -> None:
        self.settings = settings or kubernetes_settings()
        self._api = api

    @property
    def api(self) -> KubeApi:
        if self._api is None:
            client = connect(self.settings.context)
            self._api = KubeApi(client, self.settings.options.namespace)
        return self._api

    @api_errors
    def ping(self) -> None:
        # What the provider needs most, in its namespace: may it list the Pods there?
        self.api.list("Pod", f"{LABEL_ROLE}={CONTAINER_ROLE}", metadata_only=True, limit=1)

    @api_errors
    def image_id(self, reference: str) -> str:
        """The reference itself: the nodes pull it when a Pod starts, and the API cannot say
        beforehand whether they can (a ``start`` that cannot pull raises ``ImageNotFound``).
        A local image id is refused: no node has it."""
        if not reference or reference.startswith("sha256:"):
            raise ImageNotFound(
                f"image {reference or '(none)'} is not a reference a cluster can pull; push "
                "the image to a registry the nodes reach and use that reference"
            )
        return reference

    # Lifecycle -------------------------------------------------------------------------
    @api_errors
    def create(self, spec: WorkspaceSpec) -> RuntimeStatus:
        """The claims (kept if they are this workspace's), the NetworkPolicy, then the
        Secret, last: the record that the workspace exists means the rest is there."""
        self.image_id(spec.image)
        record = self._record(spec.workspace_id)
        if record is not None:
            return self._adopt(spec, record)
        made: list[tuple[str, str]] = []
        try:
            for claim in claim_manifests(spec, self.settings.options):
                self._ensure(claim, spec.workspace_id, made)
            self._ensure(network_policy(spec, self.settings.options), spec.workspace_id, made)
            self._ensure(workspace_record(spec, self.settings.options), spec.workspace_id, made)
        except BaseException:
            for kind, name in reversed(made):
                with contextlib.suppress(ApiException, OSError):
                    self.api.delete(kind, name)
            raise
        return self.status(spec.workspace_id)

    def _adopt(self, spec: WorkspaceSpec, record: dict[str, Any]) -> RuntimeStatus:
        image = stored_pod(record)["spec"]["containers"][0]["image"]
        if image != spec.image:
            raise Conflict(
                f"workspace {spec.name} already has a container on another image; "
                "rebuild it instead"
            )
        return self.status(spec.workspace_id)

    def _ensure(self, manifest: dict[str, Any], workspace_id: str, made: list) -> None:
        """Create ``manifest``'s object; one that exists (409) is kept if it is labelled as
        this workspace's, else ``Conflict``: never adopt another's claim."""
        kind, name = manifest["kind"], manifest["metadata"]["name"]
        try:
            self.api.create(manifest)
            made.append((kind, name))
            return
        except ApiException as exc:
            if exc.status != 409:
                raise
        found = self.api.get(kind, name) or {}
        owner = ((found.get("metadata") or {}).get("labels") or {}).get(LABEL_WORKSPACE_ID)
        if owner != workspace_id:
            raise Conflict(
                f"{kind} {name} exists but is not labelled as belonging to workspace {workspace_id}"
            )
        if kind == "PersistentVolumeClaim":
            self._expand(found, claim_bytes(manifest))

    # Quotas: a claim's size (``VolumeQuotas``) ---------------------------------------------
    def quota_enforcement(self) -> str:
        return "enforced (each volume is a claim of its quota's size, held by the storage)"

    @api_errors
    def check_quotas(self, workspace_id: str, quotas: Mapping[str, int]) -> None:
        """A claim cannot shrink: a quota below a claim's size is refused, nothing changed."""
        for role, size in sorted(quotas.items()):
            claim = self.api.get("PersistentVolumeClaim", volume_name(workspace_id, role))
            if claim is not None and size < claim_bytes(claim):
                raise InvalidInput(
                    f"the {role} volume is a claim of {format_bytes(claim_bytes(claim))}, and "
                    f"Kubernetes cannot shrink a claim: choose at least that much (or back up, "
                    "remove with --purge and restore into a smaller one)"
                )

    def writable_layer_bytes(self, workspace_id: str) -> int | None:
        return None  # the kubelet's summary of a container is not on the namespace's API

    def _expand(self, claim: dict[str, Any], size: int) -> None:
        """Grow ``claim`` to ``size`` bytes (never shrink it): a patch of its request."""
        if size <= claim_bytes(claim):
            return
        name = claim["metadata"]["name"]
        patch = {"spec": {"resources": {"requests": {"storage": storage_quantity(size)}}}}
        try:
            self.api.patch("PersistentVolumeClaim", name, patch)
        except ApiException as exc:
            if exc.status in (403, 422) and "resize" in explain(exc).lower():
                raise ClaimNotExpandable(
                    f"the claim {name} cannot grow: its storage class does not allow volume "
                    "expansion (allowVolumeExpansion); see docs/kubernetes.md"
                ) from exc
            raise

    @api_errors
    def start(self, workspace_id: str) -> RuntimeStatus:
        """A new Pod from the record, unless one is on its way up or running; returns when
        its container runs. ``ImageNotFound`` if the nodes cannot pull its image."""
        record = self._require(workspace_id)
        name = object_name(workspace_id)
        pod = self.api.get("Pod", name)
        if pod is not None and container_state(pod) in ENDED:
            self._delete_pod(name, grace_s=None)
            pod = None
        if pod is None:
            try:
                self.api.create(stored_pod(record))
            except ApiException as exc:
                if exc.status != 409:  # made meanwhile by another start: wait for that one
                    raise
        return pod_status(self._wait_running(name))

    def _wait_running(self, name: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.settings.start_timeout_s
        while True:
            pod = self.api.get("Pod", name)
            if pod is None:
                raise WorkspaceCrashed(f"the Pod {name} was deleted while it started")
            state = container_state(pod)
            if state in (ContainerState.RUNNING, ContainerState.RESTARTING):
                return pod
            reason, message = waiting_reason(pod)
            if reason in IMAGE_ERRORS:
                self._delete_pod(name, grace_s=0)
                raise ImageNotFound(
                    f"the cluster cannot pull the workspace's image: {message or reason}"
                )
            if state is ContainerState.EXITED:
                raise WorkspaceCrashed(f"the Pod {name} ended while it started: {problem(pod)}")
            if time.monotonic() >= deadline:
                self._delete_pod(name, grace_s=0)
                raise OperationTimeout(
                    f"the Pod {name} did not run within {self.settings.start_timeout_s:.0f} s "
                    f"({problem(pod) or 'no reason given'}); it was deleted"
                )
            time.sleep(POLL_S)

    @api_errors
    def stop(self, workspace_id: str, timeout: int = 10) -> RuntimeStatus:
        """Delete the Pod, giving it ``timeout`` seconds to end; the claims stay."""
        self._delete_pod(object_name(workspace_id), grace_s=timeout)
        return self.status(workspace_id)

    @api_errors
    def restart(self, workspace_id: str, timeout: int = 10) -> RuntimeStatus:
        self._require(workspace_id)
        self.stop(workspace_id, timeout)
        return self.start(workspace_id)

    @api_errors
    def remove(self, workspace_id: str) -> None:
        """The Pod (stopped first), the Secret and the NetworkPolicy; the claims stay."""
        name = object_name(workspace_id)
        self._delete_pod(name, grace_s=None)
        self.api.delete("Secret", name)
        self.api.delete("NetworkPolicy", name)

    @api_errors
    def remove_volumes(self, workspace_id: str) -> list[str]:
        """Delete the claims; the cluster deletes their data as the storage class says
        (its reclaim policy: ``Delete`` on most)."""
        names = [volume_name(workspace_id, role) for role in VOLUME_ROLES]
        return [name for name in names if self.api.delete("PersistentVolumeClaim", name)]

    def _delete_pod(self, name: str, grace_s: int | None) -> None:
        """Delete the Pod and wait until it is gone (bounded); gone already: nothing to do."""
        if not self.api.delete("Pod", name, grace_s):
            return
        grace = 30 if grace_s is None else grace_s  # the API's default grace period
        deadline = time.monotonic() + grace + GONE_MARGIN_S
        while self.api.get("Pod", name) is not None:
            if time.monotonic() >= deadline:
                raise ProviderError(
                    f"the Pod {name} is still terminating (is its node unreachable?); "
                    "try again later"
                )
            time.sleep(POLL_S)

    # Observation -----------------------------------------------------------------------
    def _record(self, workspace_id: str) -> dict[str, Any] | None:
        return self.api.get("Secret", object_name(workspace_id))

    def _require(self, workspace_id: str) -> dict[str, Any]:
        record = self._record(workspace_id)
        if record is None:
            raise NotFound(f"workspace {workspace_id} has no container")
        return record

    @api_errors
    def status(self, workspace_id: str) -> RuntimeStatus:
        pod = self.api.get("Pod", object_name(workspace_id))
        if pod is not None:
            return pod_status(pod)
        record = self._record(workspace_id)
        if record is None:
            return RuntimeStatus(ContainerState.MISSING)
        return not_running_status(stored_pod(record))

    @api_errors
    def statuses(self) -> dict[str, RuntimeStatus]:
        """Two lists, whatever the number of workspaces: the Pods, and the records (their
        metadata only) of the workspaces that have none."""
        found: dict[str, RuntimeStatus] = {}
        for pod in self.api.list("Pod", f"{LABEL_ROLE}={CONTAINER_ROLE}"):
            workspace_id = _workspace_of(pod)
            if workspace_id:
                found[workspace_id] = pod_status(pod)
        records = self.api.list("Secret", f"{LABEL_ROLE}={ENVIRONMENT_ROLE}", metadata_only=True)
        for record in records:
            workspace_id = _workspace_of(record)
            if workspace_id and workspace_id not in found:
                found[workspace_id] = not_running_status(stored_pod(record))
        return found

    @api_errors
    def volumes(self, workspace_id: str | None = None) -> list[VolumeInfo]:
        selector = LABEL_WORKSPACE_ID + (f"={workspace_id}" if workspace_id else "")
        claims = self.api.list("PersistentVolumeClaim", selector)
        return sorted((claim_info(claim) for claim in claims), key=lambda v: v.name)

    # Reaching into a running workspace -------------------------------------------------
    def _running_pod(self, workspace_id: str) -> dict[str, Any]:
        pod = self.api.get("Pod", object_name(workspace_id))
        if pod is None:
            self._require(workspace_id)
        if pod is None or container_state(pod) is not ContainerState.RUNNING:
            raise Conflict(f"workspace {workspace_id} is not running")
        return pod

    @api_errors
    def exec(
        self, workspace_id: str, argv: Sequence[str], user: str = "dev8", workdir: str | None = None
    ) -> ExecResult:
        pod = self._running_pod(workspace_id)
        command = execute.as_user(argv, user, workdir)
        return execute.run(self.api, pod["metadata"]["name"], command)

    @api_errors
    def exec_argv(
        self, workspace_id: str, argv: Sequence[str], *, user: str, workdir: str, tty: bool
    ) -> list[str]:
        """``kubectl exec`` with this process's kubeconfig (``KUBECONFIG``, the context of
        the settings): it already does what a terminal needs (raw mode, window resizes on
        their channel, stdin's end), which the client's WebSocket would have to be taught."""
        pod = self._running_pod(workspace_id)
        kubectl = shutil.which("kubectl")
        if kubectl is None:
            raise ProviderError("`dev8 exec` on Kubernetes needs the kubectl command on PATH")
        context = [f"--context={self.settings.context}"] if self.settings.context else []
        flags = ["-i", "-t"] if tty else ["-i"]
        return [
            kubectl,
            *context,
            f"--namespace={self.api.namespace}",
            "exec",
            *flags,
            pod["metadata"]["name"],
            f"--container={CONTAINER}",
            "--",
            *execute.as_user(argv, user, workdir),
        ]

    def logs(
        self, workspace_id: str, follow: bool = False, tail: int | None = None
    ) -> Iterator[bytes]:
        """The Pod's output; ``NotFound`` without a Pod (a stopped workspace's output goes
        with its Pod). Raises API errors as dev8 errors at the call and while iterating."""
        return _mapped(self._log_stream(workspace_id, follow, tail))

    @api_errors
    def _log_stream(self, workspace_id: str, follow: bool, tail: int | None) -> Iterator[bytes]:
        name = object_name(workspace_id)
        if self.api.get("Pod", name) is None:
            raise NotFound(f"workspace {workspace_id} has no Pod, so no output")
        query: dict[str, Any] = {"container": "workspace", "follow": follow}
        if tail is not None:
            query["tailLines"] = tail
        return self.api.stream("Pod", name, "log", query, timeout=None if follow else 60)


def _workspace_of(obj: dict[str, Any]) -> str | None:
    return ((obj.get("metadata") or {}).get("labels") or {}).get(LABEL_WORKSPACE_ID)


@api_errors
def _next(stream: Iterator[bytes]) -> bytes | None:
    return next(stream, None)


def _mapped(stream: Iterator[bytes]) -> Iterator[bytes]:
    while (chunk := _next(stream)) is not None:
        yield chunk
