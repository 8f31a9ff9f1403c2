"""`dev8 doctor`: the seed's troubleshooting (volume not persisting, permission denied,
volume full) and the engine's basics as checks, each with a verdict and a fix."""

from __future__ import annotations

import json
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from dev8.backup import scripts
from dev8.core.errors import Dev8Error, ImageNotFound
from dev8.core.images import helper_image, short_image_id, workspace_image
from dev8.core.naming import VOLUME_MOUNTS, VOLUME_ROLES, volume_name
from dev8.core.quotas import (
    ENFORCEMENT_NOTE,
    QUOTA_ROLES,
    WRITABLE_LAYER_WARN,
    QuotaUse,
    effective_quotas,
    format_bytes,
)
from dev8.core.workspace import Workspace
from dev8.providers.base import HelperResult, VolumeQuotas
from dev8.service.agent_client import AgentClient
from dev8.service.volume_jobs import role_mounts
from dev8.service.volumes import VolumeService
from dev8.service.workspaces import WorkspaceService

OK, WARN, FAIL, INFO, FIXED = "ok", "warn", "fail", "info", "fixed"
USER_UID = USER_GID = 1000
OWNED_ROLES = ("home", "workspace")


@dataclass
class Check:
    name: str
    verdict: str  # ok, warn, fail, info, or fixed (a problem --fix repaired)
    message: str
    fix: str = ""  # what to do about it, or what --fix did


class Doctor:
    def __init__(self, workspaces: WorkspaceService) -> None:
        self.workspaces = workspaces
        self.volumes = VolumeService(workspaces)
        self.provider = workspaces.provider

    def run(self, name: str | None = None, fix: bool = False) -> list[Check]:
        checks = [self._engine()]
        if checks[0].verdict == FAIL:
            return checks
        checks += [
            self._image("helper image", helper_image()),
            self._image("workspace image", workspace_image()),
        ]
        checks.append(self._quota_enforcement())
        if name is None:
            checks.append(self._orphans())
            return checks
        workspace = self.workspaces.get(name)
        checks += self._workspace(workspace, fix)
        return checks

    # Engine and images -----------------------------------------------------------------
    def _engine(self) -> Check:
        try:
            self.provider.ping()
        except Dev8Error as exc:
            return Check(
                "engine", FAIL, exc.message, "`dev8 engine ensure` (as root) or start Docker"
            )
        return Check("engine", OK, "the Docker engine answers")

    def _quota_enforcement(self) -> Check:
        if not isinstance(self.provider, VolumeQuotas):
            return Check("quota enforcement", INFO, ENFORCEMENT_NOTE)
        try:
            return Check("quota enforcement", INFO, self.provider.quota_enforcement())
        except Dev8Error as exc:  # a bad DEV8_QUOTA_ENFORCE
            return Check(
                "quota enforcement", FAIL, exc.message, "DEV8_QUOTA_ENFORCE=off, loop or auto"
            )

    def _image(self, label: str, reference: str) -> Check:
        try:
            image_id = self.provider.image_id(reference)
        except ImageNotFound:
            return Check(label, FAIL, f"{reference} is not on this engine", "`dev8 image build`")
        return Check(label, OK, f"{reference} ({short_image_id(image_id)})")

    def _orphans(self) -> Check:
        orphans = self.volumes.list(orphans=True, sizes=False)
        if not orphans:
            return Check("orphan volumes", OK, "every dev8 volume belongs to a workspace")
        names = ", ".join(row.info.name for row in orphans[:5])
        return Check(
            "orphan volumes",
            WARN,
            f"{len(orphans)} volume(s) whose workspace is gone: {names}",
            "`dev8 volume ls --orphans`; back them up, then `docker volume rm` them",
        )

    # One workspace ---------------------------------------------------------------------
    def _workspace(self, workspace: Workspace, fix: bool) -> list[Check]:
        checks = [self._workspace_image(workspace), *self._mounts(workspace)]
        checks.append(self._ownership(workspace, fix))
        checks += self._quotas(workspace)
        checks += self._writable_layer(workspace)
        checks.append(self._restore_leftovers(workspace, fix))
        checks += self._ports(workspace)
        return checks

    def _workspace_image(self, workspace: Workspace) -> Check:
        image = f"{workspace.image_ref} ({short_image_id(workspace.image_id)})"
        try:
            self.provider.image_id(workspace.image_id)
        except ImageNotFound:
            return Check(
                "image",
                FAIL,
                f"the workspace's image {image} is gone",
                f"`dev8 rebuild {workspace.name}` recreates it from {workspace.image_ref}",
            )
        return Check("image", OK, f"{image} is present")

    def _mounts(self, workspace: Workspace) -> list[Check]:
        """Volume not persisting: /home/dev8 and /workspace must be dev8's named volumes."""
        mounts = {m.destination: m for m in self.volumes.access.container_mounts(workspace.id)}
        if not mounts:
            return [
                Check(
                    "mounts",
                    INFO,
                    "the workspace has no container; its volumes are checked when it has one",
                    f"`dev8 start {workspace.name}` recreates it on the same volumes",
                )
            ]
        checks = []
        for role in VOLUME_ROLES:
            path, expected = VOLUME_MOUNTS[role], volume_name(workspace.id, role)
            mount = mounts.get(path)
            if mount is None:
                verdict, message = (
                    FAIL,
                    f"nothing is mounted at {path}: its data dies with the container",
                )
            elif mount.type != "volume":
                verdict = FAIL
                message = (
                    f"{path} is a {mount.type} mount of {mount.source}, not the named volume "
                    f"{expected}: data written there is not in dev8's volumes"
                )
            elif mount.name != expected:
                verdict, message = FAIL, f"{path} is the volume {mount.name}, not {expected}"
            else:
                checks.append(Check(f"{role} mount", OK, f"{path} is the named volume {expected}"))
                continue
            checks.append(
                Check(
                    f"{role} mount",
                    verdict,
                    message,
                    f"copy what you need out, then `dev8 rebuild {workspace.name}` makes a "
                    "container on the named volumes",
                )
            )
        return checks

    def _helper(
        self,
        workspace: Workspace,
        purpose: str,
        argv: list[str],
        roles: Sequence[str],
        writable: bool = False,
    ) -> HelperResult:
        """Run ``argv`` on the workspace's ``roles`` volumes; the caller reads the exit."""
        jobs = self.volumes.jobs
        mounts = role_mounts(workspace.id, roles, writable=writable)
        return jobs.run(jobs.job(workspace, purpose, argv, mounts))

    def _ownership(self, workspace: Workspace, fix: bool) -> Check:
        """Permission denied: everything in /home/dev8 and /workspace belongs to UID 1000."""
        roots = [VOLUME_MOUNTS[r] for r in OWNED_ROLES]
        found = self._foreign_owned(workspace, roots)
        if isinstance(found, str):
            return Check("ownership", WARN, f"cannot check the owners: {found}")
        if found["count"] == 0:
            return Check(
                "ownership", OK, f"everything in {' and '.join(roots)} belongs to UID 1000"
            )
        examples = "; ".join(found["examples"][:3])
        message = f"{found['count']} entries not owned by UID 1000 (dev8), e.g. {examples}"
        if not fix:
            return Check(
                "ownership",
                WARN,
                message,
                f"`dev8 doctor {workspace.name} --fix` gives them to dev8",
            )
        with self.workspaces.operation(workspace, "fix-ownership"):
            result = self._helper(
                workspace, "chown", scripts.chown_argv(roots, USER_UID, USER_GID), OWNED_ROLES, True
            )
        if result.exit_code != 0:
            return Check("ownership", FAIL, f"{message}; chown failed: {result.error_tail()}")
        left = self._foreign_owned(workspace, roots)
        if isinstance(left, str) or left["count"]:
            still = (
                left if isinstance(left, str) else f"{left['count']} still not owned by UID 1000"
            )
            return Check("ownership", FAIL, f"{message}; {still}")
        return Check(
            "ownership", FIXED, message, "given to UID 1000 (chown -R, links not followed)"
        )

    def _foreign_owned(self, workspace: Workspace, roots: list[str]) -> dict | str:
        """How many entries UID 1000 does not own, with examples; or why that is unknown."""
        result = self._helper(
            workspace, "owners", scripts.ownership_argv(roots, USER_UID), OWNED_ROLES
        )
        try:
            found = json.loads(result.stdout)  # also after find met a file that vanished
        except ValueError:
            found = None
        return found if isinstance(found, dict) else result.error_tail()

    def _quotas(self, workspace: Workspace) -> list[Check]:
        """Volume full: usage against the quotas, and what takes the space."""
        used = self.volumes.used(workspace)
        limits = effective_quotas(workspace.quotas)
        checks = []
        largest = None
        for role in QUOTA_ROLES:
            if role not in used:
                checks.append(Check(f"{role} quota", INFO, "usage not measured yet"))
                continue
            use = QuotaUse(role, used[role], limits[role])
            if use.level == "ok":
                checks.append(Check(f"{role} quota", OK, use.describe()))
                continue
            if largest is None:
                largest = {u.role: u for u in self.volumes.du(workspace.name, depth=3, top=5)}
            top = ", ".join(f"{p} {format_bytes(s)}" for p, s in largest[role].largest[:5])
            checks.append(
                Check(
                    f"{role} quota",
                    WARN if use.level == "warning" else FAIL,
                    f"{use.describe()}; largest: {top or 'nothing big'}",
                    f"`dev8 clean {workspace.name}` empties package caches; "
                    f"`dev8 quota {workspace.name} --{role} SIZE` raises the limit",
                )
            )
        return checks

    def _writable_layer(self, workspace: Workspace) -> list[Check]:
        """The container's own layer: no quota bounds it (apt installs and /tmp land there)."""
        if not isinstance(self.provider, VolumeQuotas):
            return []
        size = self.provider.writable_layer_bytes(workspace.id)
        if size is None:
            return []
        message = f"{format_bytes(size)} written outside the volumes (apt, /tmp)"
        if size <= WRITABLE_LAYER_WARN:
            return [Check("writable layer", OK, message)]
        fix = (
            f"over {format_bytes(WRITABLE_LAYER_WARN)}: `dev8 rebuild {workspace.name}` "
            "makes a new container (recorded apt packages come back; /tmp does not)"
        )
        return [Check("writable layer", WARN, message, fix)]

    def _restore_leftovers(self, workspace: Workspace, fix: bool) -> Check:
        roots = [VOLUME_MOUNTS[r] for r in VOLUME_ROLES]
        result = self._helper(
            workspace, "restore-status", scripts.swap_argv("status", "", roots), VOLUME_ROLES
        )
        try:
            journals = {root: j for root, j in json.loads(result.stdout).items() if j}
        except ValueError:
            return Check("restores", WARN, f"cannot read restore journals: {result.error_tail()}")
        if not journals:
            return Check("restores", OK, "no unfinished restore")
        what = ", ".join(f"{root} ({j.get('state')})" for root, j in journals.items())
        if not fix:
            return Check(
                "restores",
                WARN,
                f"an unfinished restore left data behind in {what}",
                f"`dev8 doctor {workspace.name} --fix` rolls it back and removes it",
            )
        with self.workspaces.operation(workspace, "fix-restore"):
            self.volumes.jobs.remove_stale(workspace.id)
            fixed = self._helper(
                workspace,
                "recover",
                scripts.swap_argv("recover", "", list(journals)),
                VOLUME_ROLES,
                True,
            )
        if fixed.exit_code != 0:
            return Check("restores", FAIL, f"{what}: {fixed.error_tail()}")
        return Check(
            "restores", FIXED, f"an unfinished restore in {what}", "rolled back and removed"
        )

    def _ports(self, workspace: Workspace) -> list[Check]:
        if not workspace.ports:
            return [
                Check(
                    "ports",
                    INFO,
                    f"{workspace.name} is {workspace.observed_state.value}; ports not checked",
                )
            ]
        agent = AgentClient(timeout=3)
        health = agent.health(workspace.agent_url)
        checks = [
            Check(
                "agent port",
                OK if health is None else FAIL,
                f"{workspace.agent_url} answers: healthy"
                if health is None
                else f"{workspace.agent_url}: {health}",
                "" if health is None else f"`dev8 logs {workspace.name}`",
            )
        ]
        ide = workspace.ports.get("ide")
        checks.append(_http_check("IDE port", ide, "/healthz", workspace.name))
        checks.append(_ssh_check(workspace.ports.get("ssh"), workspace.name))
        return checks


def _http_check(label: str, port: int | None, path: str, name: str) -> Check:
    import http.client

    if port is None:
        return Check(label, FAIL, "not published", f"`dev8 rebuild {name}`")
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
    try:
        connection.request("GET", path)
        status = connection.getresponse().status
    except (OSError, http.client.HTTPException) as exc:
        return Check(
            label, FAIL, f"127.0.0.1:{port} does not answer ({exc})", f"`dev8 logs {name}`"
        )
    finally:
        connection.close()
    verdict = OK if status < 500 else FAIL
    return Check(label, verdict, f"127.0.0.1:{port}{path} answers HTTP {status}")


def _ssh_check(port: int | None, name: str) -> Check:
    if port is None:
        return Check("SSH port", FAIL, "not published", f"`dev8 rebuild {name}`")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
            banner = sock.recv(64)
    except OSError as exc:
        return Check(
            "SSH port", FAIL, f"127.0.0.1:{port} does not answer ({exc})", f"`dev8 logs {name}`"
        )
    if banner.startswith(b"SSH-"):
        return Check(
            "SSH port", OK, f"127.0.0.1:{port} answers {banner.split()[0].decode(errors='replace')}"
        )
    return Check("SSH port", FAIL, f"127.0.0.1:{port} gives no SSH banner", f"`dev8 logs {name}`")
