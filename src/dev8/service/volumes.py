"""Volumes as users see them: which exist, what uses the space, quotas, cache cleaning."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass, field

from dev8.backup import scripts
from dev8.core.errors import InvalidInput, NotFound, ProviderError
from dev8.core.naming import LABEL_OWNER, VOLUME_MOUNTS, VOLUME_ROLES, volume_name
from dev8.core.quotas import QUOTA_ROLES, QuotaUse, effective_quotas, format_bytes
from dev8.core.states import ContainerState
from dev8.core.workspace import Workspace
from dev8.providers.base import (
    HelperMount,
    QuotaVolumes,
    VolumeAccess,
    VolumeInfo,
    VolumeQuotas,
)
from dev8.service.volume_jobs import VolumeJobs, role_mounts
from dev8.service.workspaces import Progress, WorkspaceService

LISTING_ID = "volumes"  # helpers that measure many workspaces' volumes at once


@dataclass
class VolumeRow:
    info: VolumeInfo
    workspace: str | None  # its name; None when the workspace is gone (an orphan)
    size: int | None = None
    quota: int | None = None

    @property
    def orphan(self) -> bool:
        return self.workspace is None

    @property
    def use(self) -> QuotaUse | None:
        if self.size is None or self.quota is None:
            return None
        return QuotaUse(self.info.role, self.size, self.quota)


@dataclass
class Usage:
    """One volume: bytes used and the largest directories under it (path, bytes)."""

    role: str
    path: str
    total: int
    largest: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class Cleaned:
    cache: str
    before: int
    after: int

    @property
    def reclaimed(self) -> int:
        return max(0, self.before - self.after)


class VolumeService:
    def __init__(self, workspaces: WorkspaceService) -> None:
        self.workspaces = workspaces
        self.jobs = VolumeJobs(workspaces.provider, workspaces.owner, "inspect volumes")

    @property
    def access(self) -> VolumeAccess:
        return self.jobs.access

    def _helper(
        self,
        scope: Workspace | str,
        purpose: str,
        argv: list[str],
        mounts: Sequence[HelperMount],
    ) -> bytes:
        job = self.jobs.job(scope, purpose, argv, mounts)
        return self.jobs.run_checked(job, f"{purpose} failed").stdout

    # Listing ---------------------------------------------------------------------------
    def list(self, orphans: bool = False, sizes: bool = True) -> list[VolumeRow]:
        """Every dev8 volume of this owner, with its workspace, size and quota."""
        known = {ws.id: ws for ws in self.workspaces.store.list(self.workspaces.owner, True)}
        rows = []
        for info in self.workspaces.provider.volumes():
            if info.labels.get(LABEL_OWNER) != self.workspaces.owner:
                continue
            workspace = known.get(info.workspace_id)
            if orphans and workspace is not None:
                continue
            quota = effective_quotas(workspace.quotas).get(info.role) if workspace else None
            rows.append(VolumeRow(info, workspace.name if workspace else None, quota=quota))
        if sizes and rows:
            measured = self.sizes([row.info.name for row in rows])
            for row in rows:
                row.size = measured.get(row.info.name)
        return rows

    def sizes(self, names: builtins.list[str]) -> dict[str, int]:
        """Bytes used by each volume (one helper mounts them all, read-only)."""
        mounts = [HelperMount(f"/v/{i}", volume=name) for i, name in enumerate(names)]
        out = self._helper(LISTING_ID, "du", scripts.du_argv([m.target for m in mounts], 0), mounts)
        by_target = dict(_du_records(out))
        return {
            name: by_target[f"/v/{i}"] for i, name in enumerate(names) if f"/v/{i}" in by_target
        }

    def inspect(self, name: str) -> builtins.list[VolumeRow]:
        """A volume by its name, or all volumes of a workspace by the workspace's name."""
        rows = [row for row in self.list(sizes=False) if name in (row.info.name, row.workspace)]
        if not rows:
            raise NotFound(f"no dev8 volume or workspace named {name!r}; `dev8 volume ls`")
        measured = self.sizes([row.info.name for row in rows])
        for row in rows:
            row.size = measured.get(row.info.name)
        return rows

    # Usage -----------------------------------------------------------------------------
    def du(self, name: str, depth: int = 3, top: int = 10) -> builtins.list[Usage]:
        """Bytes used per volume and its largest directories, measured now."""
        workspace = self.workspaces.find(name)
        if depth < 1:
            raise InvalidInput("--depth must be at least 1")
        mounts = role_mounts(workspace.id, VOLUME_ROLES)
        out = self._helper(
            workspace, "du", scripts.du_argv([m.target for m in mounts], depth), mounts
        )
        records = _du_records(out)
        usages = []
        for role in VOLUME_ROLES:
            root = VOLUME_MOUNTS[role]
            inside = [(p, s) for p, s in records if p.startswith(root + "/")]
            usages.append(
                Usage(
                    role,
                    root,
                    dict(records).get(root, 0),
                    _largest(inside, top),
                )
            )
        return usages

    def used(self, workspace: Workspace) -> dict[str, int]:
        """Bytes used per volume: what the agent measured if it runs, else measured now."""
        measured = self._agent_usage(workspace)
        if measured:
            return measured
        names = {volume_name(workspace.id, role): role for role in QUOTA_ROLES}
        return {names[n]: size for n, size in self.sizes(list(names)).items()}

    def _agent_usage(self, workspace: Workspace) -> dict[str, int]:
        """What the running workspace's agent last measured; empty if it does not answer."""
        disk = self.workspaces.disk_usage(workspace)
        return {role: int(v["used_bytes"]) for role, v in disk.items() if "used_bytes" in v}

    # Quotas ----------------------------------------------------------------------------
    def set_quotas(
        self,
        name: str,
        limits: dict[str, int],
        progress: Progress | None = None,
        bound_existing: bool = False,
    ) -> Workspace:
        """Change limits; the container is made again (same image, same volumes) so the
        agent gets them, and started again if it ran. A backend that enforces quotas grows
        the volumes then (while no container mounts them) and refuses a shrink first.
        ``bound_existing`` moves volumes made before enforcement onto bounded ones too."""
        unknown = set(limits) - set(QUOTA_ROLES)
        if unknown:
            raise InvalidInput(
                f"no quota for {', '.join(sorted(unknown))}; only home and workspace"
            )
        workspace = self.workspaces.find(name)
        report = progress or (lambda _m: None)
        with self.workspaces.operation(workspace, "quota"):
            provider = self.workspaces.provider
            quotas = effective_quotas({**workspace.quotas, **limits})
            if isinstance(provider, VolumeQuotas):
                provider.check_quotas(workspace.id, quotas)
            unbounded = self._unbounded(workspace, quotas) if bound_existing else []
            workspace.quotas = {**workspace.quotas, **limits}
            self.workspaces.store.save(workspace)
            bound = lambda: self._bound(workspace, unbounded, quotas, report)  # noqa: E731
            if self.workspaces.provider.status(workspace.id).state is not ContainerState.MISSING:
                self.workspaces.recreate_container(workspace, report, while_removed=bound)
            else:
                bound()
        return workspace

    def _unbounded(self, workspace: Workspace, quotas: dict[str, int]) -> builtins.list[str]:
        """The roles whose volumes are not bounded yet; refused, before anything changes,
        where the backend cannot bound them or what a volume holds exceeds its quota."""
        provider = self.workspaces.provider
        if not isinstance(provider, QuotaVolumes):
            raise InvalidInput(f"the {provider.name} backend cannot bound existing volumes")
        roles = [r for r in QUOTA_ROLES if not provider.volume_enforced(workspace.id, r)]
        names = {volume_name(workspace.id, role): role for role in roles}
        for volume, used in self.sizes(builtins.list(names)).items():
            role = names[volume]
            if used > quotas[role]:
                raise InvalidInput(
                    f"{role} holds {format_bytes(used)}, more than its quota of "
                    f"{format_bytes(quotas[role])}: raise the quota (--{role}) or free space"
                )
        return roles

    def _bound(
        self, workspace: Workspace, roles: Sequence[str], quotas: dict[str, int], report: Progress
    ) -> None:
        """Copy each unbounded volume into a bounded one, which then takes its name."""
        provider = self.workspaces.provider
        if not roles or not isinstance(provider, QuotaVolumes):
            return
        for role in roles:
            report(f"moving {role} onto a volume bounded at {format_bytes(quotas[role])}")
            copy = provider.prepare_enforced(workspace.id, role, quotas[role])
            mounts = [
                HelperMount("/from", volume=volume_name(workspace.id, role)),
                HelperMount("/to", volume=copy, read_only=False),
            ]
            self._helper(workspace, "bound", scripts.copy_volume_argv("/from", "/to"), mounts)
            provider.commit_enforced(workspace.id, role)

    # Cleaning --------------------------------------------------------------------------
    def clean(self, name: str) -> builtins.list[Cleaned]:
        """Empty the npm, pip, cargo and apt download caches; what each held and holds now."""
        workspace = self.workspaces.find(name)
        if self.workspaces.provider.status(workspace.id).running:
            result = self.workspaces.provider.exec(workspace.id, scripts.clean_argv(), user="root")
            if result.exit_code != 0:
                raise ProviderError(
                    f"cleaning failed: {result.output.decode(errors='replace')[-200:]}"
                )
            output = result.output
        else:
            mounts = role_mounts(workspace.id, ("home", "system"), writable=True)
            output = self._helper(workspace, "clean", scripts.clean_argv(), mounts)
        cleaned = []
        for line in output.decode(errors="replace").splitlines():
            parsed = scripts.parse_line(line)
            if parsed and parsed[0] == "clean":
                values = parsed[1]
                cleaned.append(Cleaned(values["name"], values["before"], values["after"]))
        return cleaned


def _du_records(output: bytes) -> list[tuple[str, int]]:
    records = []
    for record in output.split(b"\0"):
        size, _, path = record.decode(errors="replace").partition("\t")
        if path and size.strip().isdigit():
            records.append((path.lstrip("\n"), int(size)))
    return records


def _largest(records: list[tuple[str, int]], top: int) -> list[tuple[str, int]]:
    """The biggest directories, leaving out one that is nearly all (90%) a single child:
    the child is listed and says more."""
    biggest_child: dict[str, int] = {}
    for path, size in records:
        parent = path.rsplit("/", 1)[0]
        biggest_child[parent] = max(size, biggest_child.get(parent, 0))
    ordered = sorted(records, key=lambda record: record[1], reverse=True)
    return [(p, s) for p, s in ordered if biggest_child.get(p, 0) < s * 0.9][:top]
