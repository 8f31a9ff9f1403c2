"""The Azure Container Instances provider: a workspace is three Azure Files shares, a sealed
record in the server's data directory and, while it runs, a container group (``specs``
builds them all).

What the Docker provider's container is, here is split in two: the record is the group to
deploy, rendered at ``create`` (``records``), and the group is the running processes. ACI has
no "made, not started" group and keeps nothing of a stopped one but its definition, so
``stop`` deletes the group and ``start`` deploys a new one from the record: a new IP each
time (read fresh from Azure, never stored), the same shares. A change of CPU or memory is a
new record (``remove`` then ``create``), never a PUT over a running group, which ACI refuses.
The group's state is mapped in ``status``; Azure's failures in ``errors``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.containerinstance import models as aci

from dev8.core.errors import (
    Conflict,
    ImageNotFound,
    NotFound,
    OperationTimeout,
    ProviderError,
    WorkspaceCrashed,
)
from dev8.core.naming import VOLUME_ROLES
from dev8.core.states import ContainerState
from dev8.providers.aci import execute
from dev8.providers.aci.client import AzureApi, connect
from dev8.providers.aci.errors import IMAGE_ERRORS, azure_errors, error_code
from dev8.providers.aci.keys import record_key, sync_password
from dev8.providers.aci.records import Records
from dev8.providers.aci.settings import AciSettings, aci_settings
from dev8.providers.aci.specs import (
    CONTAINER,
    META_OWNER,
    META_ROLE,
    META_WORKSPACE,
    container_group,
    file_shares,
    group_name,
    share_name,
)
from dev8.providers.aci.status import (
    group_state,
    group_status,
    not_running_status,
    problem,
    workspace_of,
)
from dev8.providers.base import ExecResult, RuntimeStatus, VolumeInfo, WorkspaceSpec

POLL_S = 0.25  # how often a group being made is looked at again (a GET, cheap)
# The shares dev8 makes: ``dev8-<id>-<role>``.
SHARE = re.compile(r"^dev8-(?P<workspace>[a-z0-9]+)-(?P<role>" + "|".join(VOLUME_ROLES) + ")$")
ENDED = (ContainerState.EXITED, ContainerState.UNKNOWN)


class AciProvider:
    name = "aci"
    # A group's disk is gone at a stop: the agent syncs first (SyncedDisk), for at most this
    # long; then the stop goes on and the agent's sync at SIGTERM is the last chance.
    sync_before_stop_s = 900.0

    def __init__(self, api: AzureApi | None = None, settings: AciSettings | None = None) -> None:
        self.settings = settings or aci_settings()
        self._api = api
        self.records = Records(self.settings.records_dir, record_key(self.settings.key))

    @property
    def api(self) -> AzureApi:
        if self._api is None:
            self._api = connect(self.settings)
        return self._api

    @property
    def _group(self) -> Any:
        return self.api.groups.container_groups

    @property
    def _shares(self) -> Any:
        return self.api.storage.file_shares

    @property
    def _rg(self) -> str:
        return self.settings.resource_group

    @property
    def _account(self) -> str:
        return self.settings.options.storage_account

    @azure_errors
    def ping(self) -> None:
        # What the provider needs most: may it list the groups of its resource group?
        next(iter(self._group.list_by_resource_group(self._rg)), None)

    @azure_errors
    def image_id(self, reference: str) -> str:
        """The reference itself: ACI pulls it when a group is deployed, and nothing says
        beforehand whether it can (a ``start`` that cannot pull raises ``ImageNotFound``)."""
        if not reference or reference.startswith("sha256:"):
            raise ImageNotFound(
                f"image {reference or '(none)'} is not a reference ACI can pull; push the "
                "image to a registry the groups reach (docs/azure.md) and use that reference"
            )
        return reference

    # Lifecycle -------------------------------------------------------------------------
    @azure_errors
    def create(self, spec: WorkspaceSpec) -> RuntimeStatus:
        """The shares (kept if they are this workspace's), then the record, last: the record
        that the workspace exists means its shares are there."""
        self.image_id(spec.image)
        password = sync_password(self.settings.key, spec.workspace_id)
        # Built first: a size beyond ACI's limits is refused before anything is made.
        group = container_group(spec, self.settings.options, password, account_key="")
        record = self.records.read(spec.workspace_id)
        if record is not None:
            return self._adopt(spec, record)
        made: list[str] = []
        try:
            for name, share in file_shares(spec, self.settings.options).items():
                self._ensure_share(name, share, spec.workspace_id, made)
            self.records.write(spec.workspace_id, {"group": group.serialize()})
        except BaseException:
            for name in reversed(made):
                self._delete_share(name)
            raise
        return self.status(spec.workspace_id)

    def _adopt(self, spec: WorkspaceSpec, record: dict[str, Any]) -> RuntimeStatus:
        if _image(stored_group(record)) != spec.image:
            raise Conflict(
                f"workspace {spec.name} already has a container on another image; "
                "rebuild it instead"
            )
        return self.status(spec.workspace_id)

    def _ensure_share(self, name: str, share: Any, workspace_id: str, made: list[str]) -> None:
        """Create the share; one that exists (409) is kept if its metadata says it is this
        workspace's (and grown to the quota), else ``Conflict``: never adopt another's."""
        try:
            self._shares.create(self._rg, self._account, name, share)
            made.append(name)
            return
        except HttpResponseError as exc:
            if exc.status_code != 409:
                raise
        found = self._shares.get(self._rg, self._account, name)
        if (found.metadata or {}).get(META_WORKSPACE) != workspace_id:
            raise Conflict(
                f"the share {name} exists but does not belong to workspace {workspace_id}"
            )
        if (found.share_quota or 0) < share.share_quota:
            found.share_quota = share.share_quota
            self._shares.update(self._rg, self._account, name, found)

    @azure_errors
    def start(self, workspace_id: str) -> RuntimeStatus:
        """A new group from the record, unless one is being made or runs; returns when its
        container runs. ``ImageNotFound`` if ACI cannot pull its image."""
        record = self._require(workspace_id)
        name = group_name(workspace_id)
        group = self._get(name)
        if group is not None and group_state(group) in ENDED:
            self._delete_group(name)
            group = None
        deadline = time.monotonic() + self.settings.start_timeout_s
        if group is None:
            self._deploy(name, stored_group(record), deadline)
        return group_status(self._wait_running(name, deadline))

    def _deploy(self, name: str, group: aci.ContainerGroup, deadline: float) -> None:
        """PUT the group with the storage account's key of now (a rotated key works at the
        next start); a 409 (a delete still running) is tried again until ``deadline``."""
        key = self._account_key()
        for volume in group.volumes or []:
            if volume.azure_file is not None:
                volume.azure_file.storage_account_key = key
        while True:
            try:
                poller = self._group.begin_create_or_update(self._rg, name, group)
                poller.result(timeout=max(1.0, deadline - time.monotonic()))
                return
            except HttpResponseError as exc:
                if error_code(exc) in IMAGE_ERRORS:
                    self._delete_group(name)
                    raise ImageNotFound(
                        f"ACI cannot pull the workspace's image {_image(group)}: "
                        f"{exc.message.splitlines()[0] if exc.message else error_code(exc)}"
                    ) from exc
                if exc.status_code != 409 or time.monotonic() >= deadline:
                    raise
            time.sleep(POLL_S)

    def _account_key(self) -> str:
        keys = self.api.storage.storage_accounts.list_keys(self._rg, self._account)
        values = [k.value for k in keys.keys_property or [] if k.value]
        if not values:
            raise ProviderError(
                f"the storage account {self._account} gave no key; ACI mounts shares with one"
            )
        return str(values[0])

    def _wait_running(self, name: str, deadline: float) -> aci.ContainerGroup:
        while True:
            group = self._get(name)
            if group is None:
                raise WorkspaceCrashed(f"the container group {name} was deleted while it started")
            state = group_state(group)
            if state in (ContainerState.RUNNING, ContainerState.RESTARTING):
                return group
            if state is ContainerState.EXITED:
                raise WorkspaceCrashed(
                    f"the container group {name} ended while it started: {problem(group)}"
                )
            if time.monotonic() >= deadline:
                self._delete_group(name)
                raise OperationTimeout(
                    f"the container group {name} did not run within "
                    f"{self.settings.start_timeout_s:.0f} s ({problem(group) or 'no reason'}); "
                    "it was deleted"
                )
            time.sleep(POLL_S)

    @azure_errors
    def stop(self, workspace_id: str, timeout: int = 10) -> RuntimeStatus:
        """Delete the group (ACI sends the container SIGTERM: the agent's last sync); the
        shares and the record stay. ACI has no grace period to set: ``timeout`` unused."""
        self._delete_group(group_name(workspace_id))
        return self.status(workspace_id)

    @azure_errors
    def restart(self, workspace_id: str, timeout: int = 10) -> RuntimeStatus:
        self._require(workspace_id)
        self.stop(workspace_id, timeout)
        return self.start(workspace_id)

    @azure_errors
    def remove(self, workspace_id: str) -> None:
        """The group (stopped first) and the record; the shares stay."""
        self._delete_group(group_name(workspace_id))
        self.records.delete(workspace_id)

    @azure_errors
    def remove_volumes(self, workspace_id: str) -> list[str]:
        """Delete the shares, and with them the restic repositories: the data is gone."""
        names = {share_name(workspace_id, role) for role in VOLUME_ROLES}
        present = [s.name for s in self._list_shares(f"dev8-{workspace_id}-") if s.name in names]
        return [name for name in sorted(present) if self._delete_share(name)]

    def _list_shares(self, prefix: str) -> list[Any]:
        """The account's shares whose names start with ``prefix``: one call."""
        return list(self._shares.list(self._rg, self._account, filter=prefix))

    def _delete_share(self, name: str) -> bool:
        try:
            self._shares.delete(self._rg, self._account, name)
        except ResourceNotFoundError:
            return False
        return True

    def _delete_group(self, name: str) -> None:
        """Delete the group and wait until Azure says it is gone; gone already: nothing."""
        try:
            poller = self._group.begin_delete(self._rg, name)
            poller.result(timeout=self.settings.start_timeout_s)
        except ResourceNotFoundError:
            return
        if poller.status() not in ("Succeeded", "succeeded"):
            raise ProviderError(f"the container group {name} is still being deleted; try again")

    # Observation -----------------------------------------------------------------------
    def _get(self, name: str) -> aci.ContainerGroup | None:
        try:
            group: aci.ContainerGroup = self._group.get(self._rg, name)
        except ResourceNotFoundError:
            return None
        return group

    def _require(self, workspace_id: str) -> dict[str, Any]:
        record = self.records.read(workspace_id)
        if record is None:
            raise NotFound(f"workspace {workspace_id} has no container")
        return record

    @azure_errors
    def status(self, workspace_id: str) -> RuntimeStatus:
        group = self._get(group_name(workspace_id))
        if group is not None:
            return group_status(group)
        record = self.records.read(workspace_id)
        if record is None:
            return RuntimeStatus(ContainerState.MISSING)
        return not_running_status(stored_group(record), group_name(workspace_id))

    @azure_errors
    def statuses(self) -> dict[str, RuntimeStatus]:
        """One list of the resource group's container groups, whatever the number of
        workspaces (a list has no instance views: states from provisioning), and the
        records on disk for those without a group."""
        found: dict[str, RuntimeStatus] = {}
        for group in self._group.list_by_resource_group(self._rg):
            workspace_id = workspace_of(group)
            if workspace_id:
                found[workspace_id] = group_status(group)
        for workspace_id in self.records.workspace_ids():
            if workspace_id not in found:
                record = self.records.read(workspace_id)
                if record is not None:
                    found[workspace_id] = not_running_status(
                        stored_group(record), group_name(workspace_id)
                    )
        return found

    @azure_errors
    def volumes(self, workspace_id: str | None = None) -> list[VolumeInfo]:
        found = []
        for share in self._list_shares("dev8-" + (f"{workspace_id}-" if workspace_id else "")):
            match = SHARE.fullmatch(share.name or "")
            if match and workspace_id in (None, match["workspace"]):
                found.append(share_info(share, match["workspace"], match["role"]))
        return sorted(found, key=lambda volume: volume.name)

    # Reaching into a running workspace -------------------------------------------------
    @azure_errors
    def exec(
        self, workspace_id: str, argv: Sequence[str], user: str = "dev8", workdir: str | None = None
    ) -> ExecResult:
        group = self._get(group_name(workspace_id))
        if group is None:
            self._require(workspace_id)
        if group is None or group_state(group) is not ContainerState.RUNNING:
            raise Conflict(f"workspace {workspace_id} is not running")
        request = aci.ContainerExecRequest(
            command=execute.SHELL,
            terminal_size=aci.ContainerExecRequestTerminalSize(rows=24, cols=200),
        )
        session = self.api.groups.containers.execute_command(
            self._rg, group_name(workspace_id), CONTAINER, request
        )
        line = execute.command_line(argv, user, workdir)
        return execute.run(str(session.web_socket_uri), str(session.password), line)

    def logs(
        self, workspace_id: str, follow: bool = False, tail: int | None = None
    ) -> Iterator[bytes]:
        """The container's output as ACI keeps it (no stream: ``follow`` gives what there
        is now); ``NotFound`` without a group (a stopped workspace's output goes with it)."""
        return iter([self._log_text(workspace_id, tail)])

    @azure_errors
    def _log_text(self, workspace_id: str, tail: int | None) -> bytes:
        name = group_name(workspace_id)
        try:
            logs = self.api.groups.containers.list_logs(self._rg, name, CONTAINER, tail=tail)
        except ResourceNotFoundError:
            raise NotFound(f"workspace {workspace_id} has no group, so no output") from None
        return (logs.content or "").encode()


def stored_group(record: dict[str, Any]) -> aci.ContainerGroup:
    """The group ``create`` rendered into the workspace's record."""
    group: aci.ContainerGroup = aci.ContainerGroup.deserialize(record["group"])
    return group


def _image(group: aci.ContainerGroup) -> str | None:
    return next((c.image for c in group.containers or [] if c.name == CONTAINER), None)


def share_info(share: Any, workspace_id: str, role: str) -> VolumeInfo:
    metadata = share.metadata or {}
    return VolumeInfo(
        name=share.name,
        role=metadata.get(META_ROLE) or role,
        workspace_id=metadata.get(META_WORKSPACE) or workspace_id,
        created_at=None,
        driver="azurefile",
        labels={k: str(v) for k, v in metadata.items()},
        options={"quota_gib": str(share.share_quota or ""), "owner": metadata.get(META_OWNER, "")},
    )
