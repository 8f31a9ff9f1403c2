"""Helper jobs on a cluster (the ``VolumeAccess`` capability), mixed into the provider: each
``HelperJob`` a Pod (``jobs.helper_pod``) on the workspace's claims, deleted when done.

Its output comes through ``attach`` (stdout and stderr apart, which a Pod's log cannot give),
after a header that lets the job start: nothing is lost before dev8 reads. Files of this
machine stream through ``exec`` sessions into or out of FIFOs in the helper. Bounded as on
Docker: stdout capped, stderr's end kept, a deadline both in the Pod
(``activeDeadlineSeconds``) and here (the Pod deleted).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes.client.exceptions import ApiException

from dev8.core.errors import Conflict, HostPathUnsupported, ImageNotFound, NotFound, ProviderError
from dev8.core.naming import HELPER_ROLE, LABEL_ROLE, LABEL_WORKSPACE_ID, helper_name
from dev8.providers.base import HelperJob, HelperResult, MountInfo, VolumeInfo
from dev8.providers.container import CONTAINER_ROLE

# One definition of a helper's output bounds and of a live dev8 process, Docker's.
from dev8.providers.docker.helpers import STDOUT_MAX, _client_alive, _LineSplitter
from dev8.providers.kubernetes import execute
from dev8.providers.kubernetes.client import KubeApi
from dev8.providers.kubernetes.errors import api_errors
from dev8.providers.kubernetes.jobs import (
    CLIENT_ANNOTATION,
    HELPER_CONTAINER,
    claims_by_node,
    drain_fifo_command,
    fill_fifo_command,
    helper_network_policies,
    helper_pod,
)
from dev8.providers.kubernetes.settings import KubernetesSettings
from dev8.providers.kubernetes.specs import object_name
from dev8.providers.kubernetes.status import IMAGE_ERRORS, problem

CHUNK = 1024 * 1024  # of a file sent to a helper
POLL_S = 0.25
ENDING_S = 60.0  # after its output ends, for the kubelet to report the helper's exit


@dataclass
class Transfer:
    """A file of this machine, read by the job (``upload``) or written by it, at ``target``."""

    target: str
    host_path: Path
    upload: bool
    error: str = ""
    thread: threading.Thread | None = None


class KubernetesHelperJobs:
    """Mixed into ``KubernetesProvider``: everything here works through ``self.api``."""

    settings: KubernetesSettings
    _helper_policies_made: bool = False

    @property
    def api(self) -> KubeApi:
        raise NotImplementedError

    def image_id(self, reference: str) -> str:
        raise NotImplementedError

    @api_errors
    def run_helper(
        self, job: HelperJob, on_stderr: Callable[[str], None] | None = None
    ) -> HelperResult:
        self.image_id(job.image)
        transfers = host_transfers(job)
        node = self._node_for(job)
        self._ensure_helper_policies()
        name = helper_name(job.workspace_id, job.purpose)
        client = f"{socket.gethostname()}:{os.getpid()}"
        fifos = tuple(t.target for t in transfers)
        options = self.settings.options
        self.api.create(helper_pod(job, name, fifos, client=client, node=node, options=options))
        deadline = time.monotonic() + job.deadline_s
        try:
            self._wait_started(name, job, deadline)
            return self._run_attached(name, job, transfers, on_stderr, deadline)
        finally:
            with suppress(ApiException, OSError):
                self.api.delete("Pod", name, 0)

    def _node_for(self, job: HelperJob) -> str | None:
        """The node where running workspaces hold the job's claims (ReadWriteOnce: mounted
        on one node at a time), from one list; None when no Pod holds them."""
        claims = {mount.volume for mount in job.mounts if mount.volume}
        if not claims:
            return None
        held = claims_by_node(self.api.list("Pod", f"{LABEL_ROLE}={CONTAINER_ROLE}"))
        nodes = sorted({held[claim] for claim in claims if claim in held})
        if len(nodes) > 1:
            raise Conflict(
                f"the {job.purpose} job needs claims that running workspaces hold on different "
                f"nodes ({', '.join(nodes)}); a claim is mounted on one node at a time: "
                "stop one of them or ask for one workspace at a time"
            )
        return nodes[0] if nodes else None

    def _ensure_helper_policies(self) -> None:
        if self._helper_policies_made:
            return
        for policy in helper_network_policies(self.settings.options):
            try:
                self.api.create(policy)
            except ApiException as exc:
                if exc.status != 409:
                    raise
        self._helper_policies_made = True

    def _wait_started(self, name: str, job: HelperJob, deadline: float) -> None:
        """Until the helper's container runs (or already ended); a helper that cannot start
        is a one-line error (the Pod is deleted by the caller)."""
        while True:
            pod = self.api.get("Pod", name)
            if pod is None:
                raise ProviderError(f"the {job.purpose} job's Pod {name} was deleted")
            state = _helper_state(pod)
            if "running" in state or "terminated" in state:
                return
            waiting = state.get("waiting") or {}
            if waiting.get("reason") in IMAGE_ERRORS:
                raise ImageNotFound(
                    f"the cluster cannot pull the helper image {job.image}: "
                    f"{waiting.get('message') or waiting.get('reason')}"
                )
            if (pod.get("status") or {}).get("phase") == "Failed":
                raise ProviderError(f"the {job.purpose} job's Pod failed: {problem(pod)}")
            _check_deadline(job, deadline, f" ({problem(pod) or 'it never started'})")
            time.sleep(POLL_S)

    def _run_attached(
        self,
        name: str,
        job: HelperJob,
        transfers: list[Transfer],
        on_stderr: Callable[[str], None] | None,
        deadline: float,
    ) -> HelperResult:
        session = execute.open_session(self.api, name, HELPER_CONTAINER, None, stdin=True)
        stdout, stderr = bytearray(), _LineSplitter(on_stderr)
        try:
            stdin = job.stdin or b""
            session.write_stdin(f"{len(stdin)}\n".encode() + stdin)
            for transfer in transfers:
                self._start_transfer(name, transfer)
            while session.is_open():
                _check_deadline(job, deadline)
                session.update(timeout=min(1.0, max(0.0, deadline - time.monotonic())))
                stdout += session.read_channel(1)
                stderr.feed(session.read_channel(2))
                if len(stdout) > STDOUT_MAX:
                    raise ProviderError(
                        f"the {job.purpose} job printed more than {STDOUT_MAX // 2**20} MiB; "
                        "stopped"
                    )
        finally:
            session.close()
        stderr.flush()
        exit_code = self._exit_code(name, job, deadline)
        for transfer in transfers:
            if transfer.thread is not None:
                transfer.thread.join(max(1.0, deadline - time.monotonic()))
            if exit_code == 0 and transfer.error:
                raise ProviderError(
                    f"the {job.purpose} job's {transfer.target} could not be copied "
                    f"{'from' if transfer.upload else 'to'} {transfer.host_path}: "
                    f"{transfer.error}"
                )
        return HelperResult(exit_code, bytes(stdout), bytes(stderr.kept))

    def _exit_code(self, name: str, job: HelperJob, deadline: float) -> int:
        """The helper's exit code, once the kubelet reports it (its output has ended)."""
        ending = min(deadline, time.monotonic() + ENDING_S)
        while True:
            pod = self.api.get("Pod", name)
            if pod is None:
                raise ProviderError(f"the {job.purpose} job's Pod {name} was deleted")
            ended = _helper_state(pod).get("terminated")
            if ended:
                return int(ended.get("exitCode", 1))
            if (pod.get("status") or {}).get("phase") == "Failed":
                raise ProviderError(f"the {job.purpose} job's Pod failed: {problem(pod)}")
            _check_deadline(job, deadline)
            if time.monotonic() >= ending:
                raise ProviderError(
                    f"the {job.purpose} job's output ended but its Pod {name} did not "
                    f"within {ENDING_S:.0f} s; stopped"
                )
            time.sleep(POLL_S)

    def _start_transfer(self, pod: str, transfer: Transfer) -> None:
        work = _upload if transfer.upload else _download
        transfer.thread = threading.Thread(
            target=work, args=(self.api, pod, transfer), name="dev8-transfer", daemon=True
        )
        transfer.thread.start()

    @api_errors
    def remove_stale_helpers(self, workspace_id: str) -> list[str]:
        """Helpers that ended (the kubelet keeps their Pod) or whose dev8 process on this
        machine is gone. A running one of another machine is left to its deadline."""
        selector = f"{LABEL_WORKSPACE_ID}={workspace_id},{LABEL_ROLE}={HELPER_ROLE}"
        removed = []
        for pod in self.api.list("Pod", selector):
            meta = pod.get("metadata") or {}
            ended = (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
            client = (meta.get("annotations") or {}).get(CLIENT_ANNOTATION, "")
            if (ended or not _client_alive(client)) and self.api.delete("Pod", meta["name"], 0):
                removed.append(meta["name"])
        return removed

    def host_paths_visible(self) -> bool:
        """Yes for files: they stream through the API (directories are refused per job)."""
        return True

    @api_errors
    def container_mounts(self, workspace_id: str) -> list[MountInfo]:
        pod = self.api.get("Pod", object_name(workspace_id))
        if pod is None:
            return []
        return pod_mounts(pod)

    @api_errors
    def inspect_volume(self, name: str) -> VolumeInfo:
        claim = self.api.get("PersistentVolumeClaim", name)
        if claim is None:
            raise NotFound(f"no volume named {name}")
        return claim_info(claim)


def host_transfers(job: HelperJob) -> list[Transfer]:
    """The job's files of this machine; ``HostPathUnsupported`` for a directory."""
    transfers = []
    for mount in job.mounts:
        if mount.host_path is None:
            continue
        path = Path(mount.host_path)
        if not path.is_file():
            raise HostPathUnsupported(
                f"the {job.purpose} job needs the directory {path} of this machine, which a "
                "cluster's nodes cannot mount; on Kubernetes use a remote snapshot repository"
            )
        transfers.append(Transfer(mount.target, path, upload=mount.read_only))
    return transfers


def claim_info(claim: dict[str, Any]) -> VolumeInfo:
    meta = claim.get("metadata") or {}
    labels = meta.get("labels") or {}
    spec = claim.get("spec") or {}
    requests = (spec.get("resources") or {}).get("requests") or {}
    return VolumeInfo(
        name=meta.get("name", ""),
        role=labels.get(LABEL_ROLE, "?"),
        workspace_id=labels.get(LABEL_WORKSPACE_ID, ""),
        created_at=meta.get("creationTimestamp"),
        driver=spec.get("storageClassName") or "default",
        labels=dict(labels),
        options={"storage": str(requests.get("storage", ""))},
    )


def pod_mounts(pod: dict[str, Any]) -> list[MountInfo]:
    """The workspace container's mounts, as Docker reports a container's."""
    spec = pod.get("spec") or {}
    sources = {volume["name"]: volume for volume in spec.get("volumes") or []}
    container: dict[str, Any] = next(iter(spec.get("containers") or []), {})
    found = []
    for mount in container.get("volumeMounts") or []:
        source = sources.get(mount.get("name"), {})
        claim = (source.get("persistentVolumeClaim") or {}).get("claimName")
        found.append(
            MountInfo(
                destination=mount.get("mountPath", ""),
                type="volume" if claim else "tmpfs",
                name=claim,
                read_write=not mount.get("readOnly", False),
            )
        )
    return found


def _helper_state(pod: dict[str, Any]) -> dict[str, Any]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    found: dict[str, Any] = next((s for s in statuses if s.get("name") == HELPER_CONTAINER), {})
    return dict(found.get("state") or {})


def _check_deadline(job: HelperJob, deadline: float, why: str = "") -> None:
    if time.monotonic() >= deadline:
        raise ProviderError(
            f"the {job.purpose} job did not finish within {job.deadline_s:.0f} s{why}; stopped"
        )


def _upload(api: KubeApi, pod: str, transfer: Transfer) -> None:
    """The host file into the helper's FIFO (the job may stop reading early: then the
    session ends first, and the job's exit code says whether that was right)."""
    try:
        size = transfer.host_path.stat().st_size
        command = fill_fifo_command(transfer.target, size)
        session = execute.open_session(api, pod, HELPER_CONTAINER, command, stdin=True)
        try:
            with transfer.host_path.open("rb") as source:
                while session.is_open() and (chunk := source.read(CHUNK)):
                    session.write_stdin(chunk)
            session.run_forever()
        finally:
            session.close()
    except Exception as exc:  # reported by the caller if the job needed it
        transfer.error = str(exc) or type(exc).__name__


def _download(api: KubeApi, pod: str, transfer: Transfer) -> None:
    """The helper's FIFO into the host file, as the job writes it."""
    try:
        command = drain_fifo_command(transfer.target)
        session = execute.open_session(api, pod, HELPER_CONTAINER, command, stdin=False)
        try:
            with transfer.host_path.open("ab") as target:
                while session.is_open():
                    session.update(timeout=1.0)
                    target.write(session.read_channel(1))
                    target.flush()
                target.write(session.read_channel(1))
            code = execute.exit_code(session)
        finally:
            session.close()
        if code != 0:
            transfer.error = f"the copy ended with {code if code is not None else 'no status'}"
    except Exception as exc:  # reported by the caller if the job succeeded
        transfer.error = str(exc) or type(exc).__name__
