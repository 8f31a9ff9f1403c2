"""Restores: data put back into a workspace's volumes, from archives or snapshots.

Whatever the source, a restore first settles what an earlier one left (every volume
given, so that its commit decision is seen) and, when the size of the data is known up
front (archives), refuses data beyond a volume's quota or the space free to stage it. It
stops the workspace (so that nothing in its volumes changes under the helpers), fills each
volume's staging area and checks what it got, then swaps the staged data in with a few
renames, all volumes committed at one point (``dev8.agent.volume_swap``). A failure before
that point leaves every volume as it was. A restore into a workspace that does not exist
(or ``--as``) creates it, and removes it again if the restore fails.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from dev8.backup import scripts
from dev8.backup.archive import ArchiveFile, open_archive
from dev8.backup.plan import plan_restore
from dev8.backup.progress import TransferProgress
from dev8.backup.safety import ScanResult, scan
from dev8.core.environment import INTERNAL_SECRETS
from dev8.core.errors import (
    AlreadyExists,
    Conflict,
    CorruptArchive,
    Dev8Error,
    ImageNotFound,
    InvalidInput,
    ProviderError,
)
from dev8.core.naming import VOLUME_MOUNTS, VOLUME_ROLES, volume_name
from dev8.core.quotas import effective_quotas, format_bytes
from dev8.core.states import DesiredState
from dev8.core.workspace import Workspace
from dev8.providers.base import HelperMount
from dev8.service.volume_jobs import VolumeJobs, role_mounts
from dev8.service.workspaces import CreateRequest, WorkspaceService

STAGING = "/target"  # where a staging helper mounts the volume it fills
BLOCK = 4096  # a file system block: the least a file or a directory takes

# Fills the staging area of one volume role; the token names this restore's staging area.
Stage = Callable[[str, str], None]


@dataclass
class RestoreResult:
    workspace: str
    roles: list[str]
    entries: dict[str, int]
    created: bool
    restarted: bool


@dataclass(frozen=True)
class RestoreSize:
    """One volume's restored tree, as the check of its archive counted it."""

    bytes: int  # the regular files' sizes
    entries: int

    @property
    def on_disk(self) -> int:
        """About the most that staging it takes: each entry may end in a partly used block."""
        return self.bytes + self.entries * BLOCK


def check_quotas(quotas: Mapping[str, int], sizes: Mapping[str, RestoreSize], name: str) -> None:
    """Refuse data beyond the quota of the volume it is restored into."""
    limits = effective_quotas(quotas)
    for role, size in sizes.items():
        if role in limits and size.bytes > limits[role]:
            raise Conflict(
                f"the {role} data to restore is {format_bytes(size.bytes)}, over the "
                f"{format_bytes(limits[role])} quota of {name}'s {role} volume; raise it "
                f"first (`dev8 quota {name} --{role} SIZE`); nothing was changed"
            )


def check_space(free: Mapping[str, int], sizes: Mapping[str, RestoreSize], name: str) -> None:
    """Refuse data that cannot be staged beside the current data of its volume."""
    for role, size in sizes.items():
        if size.on_disk > free[role]:
            raise Conflict(
                f"the {role} data to restore needs up to {format_bytes(size.on_disk)} to be "
                f"staged; {name}'s {role} volume has {format_bytes(free[role])} free; "
                "nothing was changed"
            )


@dataclass
class Target:
    """The workspace a restore writes into."""

    workspace: Workspace
    created: bool = False  # made for this restore, so removed again if it fails
    adopted: bool = False  # a removed workspace brought back on its kept volumes


def check_archive(archive: ArchiveFile, progress: TransferProgress) -> ScanResult:
    """Read a whole archive as a restore would, writing nothing."""
    progress.start(f"checking {archive.path.name}", archive.data_size)
    done = 0

    def advance(count: int) -> None:
        nonlocal done
        done += count
        progress.update(done)

    try:
        return scan(archive, advance)
    finally:
        progress.finish()


class Restores:
    def __init__(self, workspaces: WorkspaceService, jobs: VolumeJobs) -> None:
        self.workspaces = workspaces
        self.jobs = jobs

    # The frame every restore shares ------------------------------------------------------
    def live_target(self, name: str, as_name: str | None) -> Target | None:
        """The live workspace a restore writes into, or None when it creates one (``as_name``
        must not be taken)."""
        existing = self.workspaces.store.find(self.workspaces.owner, as_name or name)
        if existing is None or existing.desired_state is DesiredState.REMOVED:
            return None
        if as_name:
            raise AlreadyExists(
                f"workspace {as_name!r} exists; restore into it with "
                f"`dev8 restore {as_name} --from ...`"
            )
        return Target(existing)

    def new_target(
        self,
        name: str,
        template: Workspace | None,
        progress: TransferProgress,
        images: Iterable[str] = (),
    ) -> Target:
        """A new (stopped) workspace ``name`` like ``template``, else with the first of
        ``images`` this engine has. A removed workspace of that name is brought back on its
        volumes, as `dev8 up` would."""
        adopted = self.workspaces.store.find(self.workspaces.owner, name) is not None
        request = self._request_like(name, template, images)
        workspace = self.workspaces.create(request, progress.message)
        return Target(workspace, created=True, adopted=adopted)

    def run(
        self,
        target: Target,
        action: str,
        roles: list[str],
        stage: Stage,
        progress: TransferProgress,
        sizes: Mapping[str, RestoreSize] | None = None,
    ) -> bool:
        """Restore ``roles`` of ``target`` as the operation ``action``: stage each, then swap
        them in. Returns whether the workspace was running (and was started again).
        ``sizes``, when known, are checked against the space free for staging first."""
        workspace = target.workspace
        try:
            with self.workspaces.operation(workspace, action):
                self.jobs.remove_stale(workspace.id)
                free = self._ready(workspace)
                check_space(free, sizes or {}, workspace.name)
                return self.stage_and_install(workspace, roles, stage, progress)
        except BaseException:
            if target.created:
                self._undo(target, progress)
            raise

    def stage_and_install(
        self, workspace: Workspace, roles: list[str], stage: Stage, progress: TransferProgress
    ) -> bool:
        """With the workspace stopped, fill each volume's staging area with ``stage(role,
        token)``, then swap them all in; returns whether it was running (and started again).
        Any failure before the swap leaves every volume as it was. Stopped first: a running
        workspace could swap a symbolic link into a staging area while a helper writes it."""
        token = secrets.token_hex(6)
        running = self.workspaces.stop_for(
            workspace, "to stage and swap in the restored data", progress.message
        )
        try:
            try:
                for role in roles:
                    stage(role, token)
            except BaseException:
                self._abort(workspace, token, roles, progress)
                raise
            progress.message(f"swapping in the restored {', '.join(roles)} data")
            self._swap(workspace, "install", token, roles)
        finally:
            if running:
                self.workspaces.resume(workspace, progress.message)
        return running

    def _swap(self, workspace: Workspace, action: str, token: str, roles: list[str]) -> bytes:
        """Run the swap program's ``action`` on ``roles``, mounted where the workspace has
        them (the program names a volume by that path: /home/dev8 is home)."""
        argv = scripts.swap_argv(action, token, [VOLUME_MOUNTS[role] for role in roles])
        mounts = role_mounts(workspace.id, roles, writable=True)
        return self.jobs.run_checked(
            self.jobs.job(workspace, "swap", argv, mounts),
            f"{action} of the restored volumes failed",
            explain=lambda result: f"{result.error_tail()}; the previous data is in place",
        ).stdout

    def _ready(self, workspace: Workspace) -> dict[str, int]:
        """Settle what an earlier restore left in any volume; the bytes free, by role."""
        output = self._swap(workspace, "ready", "", list(VOLUME_ROLES))
        try:
            found = json.loads(output)
            return {role: int(found[VOLUME_MOUNTS[role]]["free"]) for role in VOLUME_ROLES}
        except (ValueError, KeyError, TypeError) as exc:
            raise ProviderError(
                f"the restore's free space check answered {output[:200]!r}"
            ) from exc

    def _abort(
        self, workspace: Workspace, token: str, roles: list[str], progress: TransferProgress
    ) -> None:
        """Remove what a failed restore staged; the failure itself is what the caller raises."""
        try:
            self._swap(workspace, "abort", token, roles)
        except Dev8Error as exc:
            progress.message(
                f"the staged data stays behind ({exc.message}); "
                f"`dev8 doctor {workspace.name} --fix` removes it"
            )

    def _undo(self, target: Target, progress: TransferProgress) -> None:
        """After a failed restore into a workspace it created: a new one goes entirely; one
        that was adopted (removed, volumes kept) loses only its container again, never its
        volumes."""
        name = target.workspace.name
        try:
            self.workspaces.remove(name, purge=not target.adopted)
        except Dev8Error as exc:
            progress.message(f"{name} stays after the failed restore ({exc.message}); remove it")

    def _request_like(
        self, name: str, template: Workspace | None, images: Iterable[str]
    ) -> CreateRequest:
        """A new workspace like ``template`` (the one the data came from, if it is still
        known), else with defaults and the first of ``images`` this engine has."""
        if template is not None:
            return CreateRequest(
                name=name,
                image=template.image_ref,
                resources=template.resources,
                env=dict(template.env),
                secrets={k: v for k, v in template.secrets.items() if k not in INTERNAL_SECRETS},
                quotas=dict(template.quotas),
            )
        return CreateRequest(name=name, image=self._present(images) or "")  # "": the default

    def _present(self, images: Iterable[str]) -> str | None:
        for image in images:
            with contextlib.suppress(ImageNotFound):  # not on this engine: try the next
                self.workspaces.provider.image_id(image)
                return image
        return None

    # From archives -----------------------------------------------------------------------
    def from_archives(
        self,
        name: str,
        sources: list[Path],
        *,
        volume: str | None = None,
        as_name: str | None = None,
        progress: TransferProgress,
    ) -> RestoreResult:
        if not sources:
            raise InvalidInput("name at least one archive with --from")
        plan = plan_restore([open_archive(path) for path in sources], volume)
        live = self.live_target(name, as_name)
        self.jobs.check_ready(host_paths=True)
        # Every archive is read to the end before anything is created or written.
        scans = {role: check_archive(archive, progress) for role, archive in plan.items()}
        sizes = {role: RestoreSize(found.bytes, found.entries) for role, found in scans.items()}
        template = self.workspaces.store.find(self.workspaces.owner, name)
        like = live.workspace if live else template
        check_quotas(like.quotas if like else {}, sizes, as_name or name)
        target = live or self.new_target(
            as_name or name,
            template,
            progress,
            [a.manifest.image for a in plan.values() if a.manifest and a.manifest.image],
        )

        def stage(role: str, token: str) -> None:
            self._stage_archive(target.workspace, role, plan[role], scans[role], token, progress)

        restarted = self.run(target, "restore", list(plan), stage, progress, sizes)
        return RestoreResult(
            workspace=target.workspace.name,
            roles=list(plan),
            entries={role: result.entries for role, result in scans.items()},
            created=target.created,
            restarted=restarted,
        )

    def _stage_archive(
        self,
        workspace: Workspace,
        role: str,
        archive: ArchiveFile,
        checked: ScanResult,
        token: str,
        progress: TransferProgress,
    ) -> None:
        found: dict[str, str] = {}

        def on_line(line: str) -> None:
            parsed = scripts.parse_line(line)
            if parsed and parsed[0] == "progress":
                progress.update(parsed[1]["bytes"])
            elif parsed and parsed[0] == "result":
                found.update(parsed[1])

        job = self.jobs.job(
            workspace,
            "restore",
            scripts.extract_argv(archive.compression, archive.data_size, token),
            [
                HelperMount(STAGING, volume=volume_name(workspace.id, role), read_only=False),
                HelperMount(scripts.ARCHIVE, host_path=str(archive.path.resolve())),
            ],
            env={"DEV8_SWAP_PY": scripts.swap_program()},
        )
        progress.start(f"restoring {role:<9}", checked.bytes or None)
        try:
            self.jobs.run_checked(job, f"restoring the {role} volume failed", on_line)
            progress.update(checked.bytes)
        finally:
            progress.finish()
        _check_extracted(archive, role, checked, found)


def _check_extracted(
    archive: ArchiveFile, role: str, checked: ScanResult, found: dict[str, str]
) -> None:
    """What the helper extracted is what the check read, else nothing is replaced."""
    if found.get("sha256") != checked.sha256:
        raise CorruptArchive(
            f"{archive.path.name} changed between the check and the restore; nothing was replaced"
        )
    if int(found.get("entries", -1)) != checked.entries:
        raise ProviderError(
            f"restoring the {role} volume created {found.get('entries')} entries, "
            f"the archive holds {checked.entries}; nothing was replaced"
        )
