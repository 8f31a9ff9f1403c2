"""A workspace's volumes on the Docker engine: made (with an enforced size where the host
allows it, see ``loopquota``), grown, re-attached before anything mounts them, removed."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from contextlib import suppress
from functools import cached_property
from pathlib import Path
from typing import Any

import docker
from docker.errors import DockerException
from docker.errors import NotFound as DockerNotFound
from docker.models.volumes import Volume

from dev8.core.errors import Conflict, InvalidInput, ProviderError
from dev8.core.naming import (
    LABEL_OWNER,
    LABEL_ROLE,
    LABEL_WORKSPACE_ID,
    VOLUME_ROLES,
    volume_name,
)
from dev8.core.quotas import QUOTA_ROLES
from dev8.providers.base import VolumeInfo, WorkspaceSpec
from dev8.providers.container import CONTAINER_ROLE
from dev8.providers.docker.errors import engine_errors
from dev8.providers.docker.helpers import engine_is_local
from dev8.providers.docker.loopquota import (
    ENFORCED_BY,
    LABEL_ENFORCED,
    Enforcement,
    LoopVolumes,
    check_growth,
    decide,
    host_facts,
    image_of_link,
    is_enforced,
    quota_directory,
    setting_mode,
)
from dev8.providers.docker.specs import volume_specs


class DockerVolumes:
    """Mixed into ``DockerProvider``: everything here works through ``self.client``."""

    client: docker.DockerClient

    @cached_property
    def loops(self) -> LoopVolumes:
        return LoopVolumes(quota_directory())

    @cached_property
    def enforcement(self) -> Enforcement:
        """Decided once per provider, from ``DEV8_QUOTA_ENFORCE`` and what the host has."""
        return decide(setting_mode(os.environ), host_facts(engine_is_local()))

    # The VolumeQuotas capability ---------------------------------------------------------
    def quota_enforcement(self) -> str:
        return self.enforcement.describe()

    @engine_errors
    def check_quotas(self, workspace_id: str, quotas: Mapping[str, int]) -> None:
        for volume in self._enforced(workspace_id):
            role = (volume.attrs.get("Labels") or {}).get(LABEL_ROLE, "")
            if role in quotas:
                current = self.loops.size(_image(volume))
                check_growth(volume.name, current, int(quotas[role]))

    @engine_errors
    def writable_layer_bytes(self, workspace_id: str) -> int | None:
        # The list, not inspect: docker-py's inspect has no size parameter.
        wanted = [f"{LABEL_WORKSPACE_ID}={workspace_id}", f"{LABEL_ROLE}={CONTAINER_ROLE}"]
        found = self.client.api.containers(all=True, size=True, filters={"label": wanted})
        return int(found[0].get("SizeRw") or 0) if found else None

    @engine_errors
    def writable_layers(self) -> dict[str, int]:
        wanted = [LABEL_WORKSPACE_ID, f"{LABEL_ROLE}={CONTAINER_ROLE}"]
        found = self.client.api.containers(size=True, filters={"label": wanted})
        return {
            str(c["Labels"][LABEL_WORKSPACE_ID]): int(c.get("SizeRw") or 0)
            for c in found
            if (c.get("Labels") or {}).get(LABEL_WORKSPACE_ID)
        }

    # Making and growing ------------------------------------------------------------------
    def _ensure_volumes(self, spec: WorkspaceSpec) -> list[str]:
        """Create missing volumes, grow enforced ones to ``spec.quotas``; return the names
        of those this call created."""
        created: list[str] = []
        try:
            for wanted in volume_specs(spec):
                try:
                    found = self.client.volumes.get(wanted["name"])
                except DockerNotFound:
                    self._create_volume(wanted, spec.quotas.get(_role(wanted)))
                    created.append(wanted["name"])
                    continue
                owner_id = (found.attrs.get("Labels") or {}).get(LABEL_WORKSPACE_ID)
                if owner_id != spec.workspace_id:
                    raise Conflict(
                        f"volume {wanted['name']} exists but is not labelled as "
                        f"belonging to workspace {spec.workspace_id}"
                    )
                quota = spec.quotas.get(_role(wanted))
                if quota and _volume_enforced(found):
                    self.loops.grow(_image(found), int(quota))
        except BaseException:
            self._remove_volume_names(created)
            raise
        return created

    def _create_volume(self, wanted: dict[str, Any], quota: int | None) -> None:
        adopted = self.loops.adopt(wanted["name"])
        if adopted is not None:
            self._define_enforced(wanted["name"], wanted["labels"], adopted)
            return
        if not (quota and _role(wanted) in QUOTA_ROLES and self.enforcement.enforced):
            self.client.volumes.create(**wanted)
            return
        options = self.loops.create(wanted["name"], int(quota))
        try:
            self._define_enforced(wanted["name"], wanted["labels"], options)
        except BaseException:
            self.loops.remove(image_of_link(options["device"]))
            raise

    def _define_enforced(
        self, name: str, labels: Mapping[str, str], options: dict[str, str]
    ) -> None:
        labelled = {**labels, LABEL_ENFORCED: ENFORCED_BY}
        self.client.volumes.create(name=name, driver="local", driver_opts=options, labels=labelled)

    # Moving an unbounded volume onto a bounded one -----------------------------------------
    @engine_errors
    def volume_enforced(self, workspace_id: str, role: str) -> bool:
        return _volume_enforced(self.client.volumes.get(volume_name(workspace_id, role)))

    @engine_errors
    def prepare_enforced(self, workspace_id: str, role: str, size: int) -> str:
        if not self.enforcement.enforced:
            raise InvalidInput(f"quotas cannot be enforced here: {self.enforcement.reason}")
        name = volume_name(workspace_id, role)
        old = self.client.volumes.get(name)  # NotFound when there is nothing to move
        self._remove_copy(name)
        options = self.loops.create(name, size)  # a stale image from a failed try is redone
        owner = (old.attrs.get("Labels") or {}).get(LABEL_OWNER, "")
        self.client.volumes.create(
            name=_copy_name(name), driver="local", driver_opts=options, labels={LABEL_OWNER: owner}
        )
        return _copy_name(name)

    @engine_errors
    def commit_enforced(self, workspace_id: str, role: str) -> None:
        name = volume_name(workspace_id, role)
        old = self.client.volumes.get(name)
        labels = old.attrs.get("Labels") or {}
        options = self.loops.adopt(name)
        if options is None:  # checked before the old volume goes
            raise ProviderError(f"the bounded copy of {name} is missing; {name} is unchanged")
        # The copy's definition goes first: removing a volume mounted from a device leaves
        # the device's data, which the new definition under the old name then mounts.
        self._remove_copy(name)
        old.remove()
        self._define_enforced(name, labels, options)

    def _remove_copy(self, name: str) -> None:
        with suppress(DockerNotFound):
            self.client.volumes.get(_copy_name(name)).remove(force=True)

    # Before anything mounts them ---------------------------------------------------------
    def _attach_volumes(self, workspace_id: str) -> None:
        """Put every enforced volume of the workspace back on a loop device (after a reboot
        the devices are gone and the engine could not mount the volumes)."""
        for volume in self._enforced(workspace_id):
            self.loops.attach(_image(volume))

    def _attach_volume(self, info: VolumeInfo) -> None:
        if is_enforced(info.options, info.labels):
            self.loops.attach(image_of_link(info.options["device"]))

    @engine_errors
    def attach_all(self) -> list[str]:
        """Re-attach every enforced dev8 volume (when the server starts: the engine may
        have failed to restart a running workspace after a reboot); their names."""
        found = self.client.volumes.list(filters={"label": f"{LABEL_ENFORCED}={ENFORCED_BY}"})
        for volume in found:
            self.loops.attach(_image(volume))
        return sorted(volume.name for volume in found)

    def _enforced(self, workspace_id: str) -> list[Volume]:
        found = self.client.volumes.list(filters={"label": f"{LABEL_WORKSPACE_ID}={workspace_id}"})
        return [volume for volume in found if _volume_enforced(volume)]

    # Removing ----------------------------------------------------------------------------
    @engine_errors
    def remove_volumes(self, workspace_id: str) -> list[str]:
        removed = []
        for role in VOLUME_ROLES:
            name = volume_name(workspace_id, role)
            try:
                self._remove_volume(self.client.volumes.get(name))
                removed.append(name)
            except DockerNotFound:
                continue
        return removed

    def _remove_volume_names(self, names: Sequence[str]) -> None:
        for name in names:
            with suppress(DockerException):
                self._remove_volume(self.client.volumes.get(name))

    def _remove_volume(self, volume: Volume) -> None:
        remove_volume(volume)


def remove_volume(volume: Volume) -> None:
    """The engine's volume, then its image file and loop device if it has them (removed
    through the engine alone, an enforced volume would leave both behind)."""
    enforced = _volume_enforced(volume)
    volume.remove(force=True)
    if enforced:
        image = _image(volume)
        LoopVolumes(image.parent).remove(image)


def _copy_name(name: str) -> str:
    return f"{name}-bounding"


def _role(wanted: Mapping[str, Any]) -> str:
    return str(wanted["labels"][LABEL_ROLE])


def _volume_enforced(volume: Volume) -> bool:
    return is_enforced(volume.attrs.get("Options") or {}, volume.attrs.get("Labels") or {})


def _image(volume: Volume) -> Path:
    return image_of_link(volume.attrs["Options"]["device"])
