"""Backups and restores of a workspace's volumes (the design is in docs/backups.md).

A backup streams each volume through a short-lived helper container that mounts it
read-only and writes the compressed archive straight into a file on the host; dev8 hashes
the file as it grows and appends the manifest. A restore checks every archive completely
first, extracts it into the volume's staging area, checks what was extracted, and only
then swaps it in, with the workspace stopped for the few renames that takes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dev8.backup import scripts
from dev8.backup.archive import FORMATS, SUFFIXES, ArchiveFile, open_archive
from dev8.backup.manifest import Manifest, trailer
from dev8.backup.progress import TransferProgress
from dev8.backup.safety import ScanResult, scan
from dev8.core.environment import INTERNAL_SECRETS
from dev8.core.errors import (
    AlreadyExists,
    CorruptArchive,
    Dev8Error,
    ImageNotFound,
    InvalidInput,
    NotFound,
    ProviderError,
)
from dev8.core.images import helper_image, workspace_image
from dev8.core.naming import VOLUME_ROLES, volume_name
from dev8.core.quotas import format_bytes
from dev8.core.states import ContainerState, DesiredState
from dev8.core.workspace import Workspace
from dev8.providers.base import HelperJob, HelperMount, Provider, VolumeAccess, volume_access
from dev8.service.workspaces import CreateRequest, WorkspaceService

READ_SIZE = 1 << 20
STAGING = "/target"


def helper_image_id(provider: Provider) -> str:
    reference = helper_image()
    try:
        return provider.image_id(reference)
    except ImageNotFound:
        raise ImageNotFound(
            f"the helper image {reference} is not on this engine; build it with `dev8 image build`"
        ) from None


@dataclass
class BackupResult:
    role: str
    path: Path
    manifest: Manifest
    file_sha256: str  # of the whole file, as `sha256sum` prints it
    warnings: list[str] = field(default_factory=list)


@dataclass
class RestoreResult:
    workspace: str
    roles: list[str]
    entries: dict[str, int]
    created: bool
    restarted: bool


def roles_for(volume: str) -> list[str]:
    if volume == "all":
        return list(VOLUME_ROLES)
    if volume not in VOLUME_ROLES:
        raise InvalidInput(f"unknown volume {volume!r}; choose home, workspace, system or all")
    return [volume]


def compression_for(archive_format: str) -> str:
    if archive_format not in FORMATS:
        raise InvalidInput(f"unknown format {archive_format!r}; choose {' or '.join(FORMATS)}")
    return FORMATS[archive_format]


def plan_outputs(
    name: str, roles: list[str], compression: str, given: str | Path | None, stamp: str
) -> dict[str, Path]:
    """Where each volume's archive goes. ``given`` is a directory (existing, or written with
    a trailing slash), or one file name when a single volume is backed up."""
    suffix = SUFFIXES[compression]
    output = Path(given) if given is not None else None
    if output is None or output.is_dir() or str(given).endswith("/"):
        folder = output or Path.cwd()
        if not folder.is_dir():
            raise InvalidInput(f"directory {folder} does not exist")
        return {role: folder / f"{name}-{role}-{stamp}{suffix}" for role in roles}
    assert output is not None
    if len(roles) > 1:
        raise InvalidInput(
            f"-o {output} names one file, but {len(roles)} volumes make {len(roles)} "
            "archives; give a directory (or --volume home|workspace|system)"
        )
    other = next((s for c, s in SUFFIXES.items() if c != compression), "")
    if output.name.endswith(other):
        wanted = next(f for f, c in FORMATS.items() if c != compression)
        raise InvalidInput(f"{output.name} ends in {other}; add --format {wanted} for that")
    if not output.parent.is_dir():
        raise InvalidInput(f"directory {output.parent} does not exist")
    return {roles[0]: output}


def plan_restore(archives: list[ArchiveFile], volume: str | None) -> dict[str, ArchiveFile]:
    """Which volume each archive restores: its manifest says, or ``--volume`` for an archive
    made without dev8 (such as the seed's ``tar czf``)."""
    if volume is not None and volume not in VOLUME_ROLES:
        raise InvalidInput(f"unknown volume {volume!r}; choose home, workspace or system")
    plan: dict[str, ArchiveFile] = {}
    for archive in archives:
        declared = archive.manifest.volume if archive.manifest else None
        if declared is None and volume is None:
            raise InvalidInput(
                f"{archive.path.name} has no dev8 manifest (made by plain tar?); say which "
                "volume it holds with --volume home|workspace|system"
            )
        if declared is not None and volume is not None and declared != volume:
            if len(archives) > 1:
                continue  # --volume picks one archive out of several
            raise InvalidInput(
                f"{archive.path.name} holds the {declared} volume, not {volume}; "
                f"leave out --volume or pass --volume {declared}"
            )
        role = declared or volume
        assert role is not None
        if role in plan:
            raise InvalidInput(
                f"{plan[role].path.name} and {archive.path.name} both hold the {role} volume"
            )
        plan[role] = archive
    if not plan:
        raise InvalidInput(f"none of the archives holds the {volume} volume")
    return plan


class _Follower:
    """Hashes a file while a helper writes it, so a backup needs no second pass."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sha256 = hashlib.sha256()
        self.size = 0
        self._done = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="follow", daemon=True)

    def __enter__(self) -> _Follower:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            with self.path.open("rb") as handle:
                while True:
                    chunk = handle.read(READ_SIZE)
                    if chunk:
                        self.sha256.update(chunk)
                        self.size += len(chunk)
                    elif self._done.is_set():
                        return
                    else:
                        self._done.wait(0.05)
        except BaseException as exc:
            self._error = exc

    def finish(self) -> tuple[str, int]:
        self.__exit__()
        if self._error is not None:
            raise ProviderError(f"cannot read back {self.path}: {self._error}")
        return self.sha256.hexdigest(), self.size


class BackupService:
    def __init__(self, workspaces: WorkspaceService) -> None:
        self.workspaces = workspaces

    @property
    def access(self) -> VolumeAccess:
        return volume_access(self.workspaces.provider, "run backups")

    def _local_access(self) -> VolumeAccess:
        access = self.access
        if not access.host_paths_visible():
            raise InvalidInput(
                "backups and restores need the Docker engine on this machine (DOCKER_HOST "
                "points at another one, which cannot see this machine's files)"
            )
        return access

    # Backup ------------------------------------------------------------------------------
    def backup(
        self,
        name: str,
        volume: str = "all",
        output: str | Path | None = None,
        archive_format: str = "tar.zst",
        stop: bool = False,
        progress: TransferProgress | None = None,
    ) -> list[BackupResult]:
        progress = progress or TransferProgress()
        workspace = self._recorded(name)
        roles, compression = roles_for(volume), compression_for(archive_format)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        targets = plan_outputs(workspace.name, roles, compression, output, stamp)
        for path in targets.values():
            if path.exists():
                raise AlreadyExists(f"{path} exists; choose another name or directory")
        access = self._local_access()
        image = helper_image_id(self.workspaces.provider)
        results: list[BackupResult] = []
        with self.workspaces.operation(workspace, "backup"):
            stopped = stop and self.workspaces.stop_for(
                workspace, "for a consistent backup", progress.message
            )
            live = not stopped and self.workspaces.provider.status(workspace.id).state in (
                ContainerState.RUNNING,
                ContainerState.RESTARTING,
            )
            if live:
                progress.message(
                    f"{name} is running: the backup is crash-consistent (like pulling the "
                    "plug); use --stop for a consistent one"
                )
            try:
                access.remove_stale_helpers(workspace.id)
                for role, path in targets.items():
                    results.append(
                        self._backup_volume(
                            workspace, role, path, compression, live, image, progress
                        )
                    )
            except BaseException:
                for result in results:
                    result.path.unlink(missing_ok=True)
                raise
            finally:
                if stopped:
                    self.workspaces.resume(workspace, progress.message)
        return results

    def _backup_volume(
        self,
        workspace: Workspace,
        role: str,
        path: Path,
        compression: str,
        live: bool,
        image: str,
        progress: TransferProgress,
    ) -> BackupResult:
        partial = path.with_name(f".{path.name}.partial")
        os.close(os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        seen: dict = {"skipped": [], "scan": {}}
        try:
            with _Follower(partial) as follower:

                def on_line(line: str) -> None:
                    parsed = scripts.parse_line(line)
                    if parsed is None:
                        return
                    kind, values = parsed
                    if kind == "scan":
                        seen["scan"] = values
                        progress.start(f"{role:<9}", int(values.get("bytes", 0)) or None)
                    elif kind == "progress":
                        progress.update(values["bytes"], f"{format_bytes(follower.size)} written")
                    elif kind == "skipped":
                        seen["skipped"] = values["paths"]

                job = HelperJob(
                    workspace_id=workspace.id,
                    owner=workspace.owner,
                    purpose="backup",
                    image=image,
                    argv=scripts.backup_argv(compression),
                    mounts=(
                        HelperMount(scripts.SOURCE, volume=volume_name(workspace.id, role)),
                        HelperMount(scripts.ARCHIVE, host_path=str(partial), read_only=False),
                    ),
                )
                result = self.access.run_helper(job, on_line)
                sha256, size = follower.finish()
            if result.exit_code != 0:
                raise ProviderError(f"backing up the {role} volume failed: {result.error_tail()}")
            counts = seen["scan"]
            progress.update(int(counts.get("bytes", 0)), f"{format_bytes(size)} written")
            manifest = Manifest(
                workspace_id=workspace.id,
                workspace_name=workspace.name,
                image=workspace.image_ref,
                image_id=workspace.image_id,
                volume=role,
                created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                compression=compression,
                entries=int(counts.get("entries", 0)),
                files=int(counts.get("files", 0)),
                bytes=int(counts.get("bytes", 0)),
                archive_sha256=sha256,
                archive_bytes=size,
                crash_consistent=live,
                skipped=list(seen["skipped"]),
            )
            file_sha256 = _append_trailer(partial, follower.sha256, trailer(manifest, compression))
            os.link(partial, path)  # fails rather than overwrite a file that appeared meanwhile
            partial.unlink()
        except FileExistsError:
            raise AlreadyExists(f"{path} appeared during the backup; nothing overwritten") from None
        finally:
            partial.unlink(missing_ok=True)
            progress.finish()
        warnings = [f"not archived (not a file, directory or link): {p}" for p in seen["skipped"]]
        return BackupResult(role, path, manifest, file_sha256, warnings)

    def _recorded(self, name: str) -> Workspace:
        """A workspace, also one removed with its volumes kept (they can be backed up)."""
        workspace = self.workspaces.store.find(self.workspaces.owner, name)
        if workspace is None:
            raise NotFound(f"no workspace named {name!r}; `dev8 ls` lists them")
        return workspace

    # Checking ----------------------------------------------------------------------------
    def verify(
        self, path: Path, progress: TransferProgress | None = None
    ) -> tuple[ArchiveFile, ScanResult]:
        """Read a whole archive as a restore would, writing nothing."""
        archive = open_archive(path)
        return archive, self._scan(archive, progress or TransferProgress())

    @staticmethod
    def _scan(archive: ArchiveFile, progress: TransferProgress) -> ScanResult:
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

    # Restore -----------------------------------------------------------------------------
    def restore(
        self,
        name: str,
        sources: list[Path],
        volume: str | None = None,
        as_name: str | None = None,
        progress: TransferProgress | None = None,
    ) -> RestoreResult:
        progress = progress or TransferProgress()
        if not sources:
            raise InvalidInput("name at least one archive with --from")
        plan = plan_restore([open_archive(path) for path in sources], volume)
        target_name = as_name or name
        store, owner = self.workspaces.store, self.workspaces.owner
        existing = store.find(owner, target_name)
        live = existing is not None and existing.desired_state is not DesiredState.REMOVED
        if as_name and live:
            raise AlreadyExists(
                f"workspace {as_name!r} exists; restore into it with "
                f"`dev8 restore {as_name} --from ...`"
            )
        access = self._local_access()
        image = helper_image_id(self.workspaces.provider)
        # Every archive is read to the end before anything is created or written.
        scans = {role: self._scan(archive, progress) for role, archive in plan.items()}
        created = not live
        if created:
            template = store.find(owner, name)
            workspace = self.create_target(target_name, template, plan, progress)
        else:
            assert existing is not None
            workspace = existing
        try:
            with self.workspaces.operation(workspace, "restore"):
                access.remove_stale_helpers(workspace.id)
                restarted = self._restore_into(workspace, plan, scans, image, progress)
        except BaseException:
            if created:
                self.undo_target(workspace, adopted=existing is not None)
            raise
        return RestoreResult(
            workspace=target_name,
            roles=list(plan),
            entries={role: result.entries for role, result in scans.items()},
            created=created,
            restarted=restarted,
        )

    def create_target(
        self,
        name: str,
        template: Workspace | None,
        plan: dict[str, ArchiveFile],
        progress: TransferProgress,
    ) -> Workspace:
        """The workspace a restore creates (stopped). A removed workspace of that name is
        brought back on its volumes, as `dev8 up` would."""
        return self.workspaces.create(self._request_for(name, template, plan), progress.message)

    def undo_target(self, workspace: Workspace, adopted: bool) -> None:
        """After a failed restore into a workspace it created: a new one goes entirely; one
        that was adopted (removed, volumes kept) loses only its container again, never
        its volumes."""
        with contextlib.suppress(Dev8Error):
            self.workspaces.remove(workspace.name, purge=not adopted)

    def _request_for(
        self, name: str, template: Workspace | None, plan: dict[str, ArchiveFile]
    ) -> CreateRequest:
        """A new workspace like ``template`` (the one the backup came from, if it is still
        known), else with defaults and the backup's image when this engine has it."""
        if template is not None:
            return CreateRequest(
                name=name,
                image=template.image_ref,
                resources=template.resources,
                env=dict(template.env),
                secrets={k: v for k, v in template.secrets.items() if k not in INTERNAL_SECRETS},
                quotas=dict(template.quotas),
            )
        image = workspace_image()
        for archive in plan.values():
            if archive.manifest and archive.manifest.image:
                with contextlib.suppress(Dev8Error):
                    self.workspaces.provider.image_id(archive.manifest.image)
                    image = archive.manifest.image
        return CreateRequest(name=name, image=image)

    def _restore_into(
        self,
        workspace: Workspace,
        plan: dict[str, ArchiveFile],
        scans: dict[str, ScanResult],
        image: str,
        progress: TransferProgress,
    ) -> bool:
        def stage(role: str, token: str) -> None:
            self._stage(workspace, role, plan[role], scans[role], token, image, progress)

        return self.stage_and_install(workspace, list(plan), stage, image, progress)

    def stage_and_install(
        self,
        workspace: Workspace,
        roles: list[str],
        stage: Callable[[str, str], None],
        image: str,
        progress: TransferProgress,
    ) -> bool:
        """Fill each volume's staging area with ``stage(role, token)``, then swap them all in
        with the workspace stopped; returns whether it was running (and started again).
        Any failure before the swap leaves every volume as it was."""
        token = secrets.token_hex(6)
        try:
            for role in roles:
                stage(role, token)
        except BaseException:
            with contextlib.suppress(Dev8Error):
                self._swap(workspace, "abort", token, roles, image)
            raise
        running = self.workspaces.stop_for(
            workspace, "to swap in the restored data", progress.message
        )
        try:
            progress.message(f"swapping in the restored {', '.join(roles)} data")
            self._swap(workspace, "install", token, roles, image)
        finally:
            if running:
                self.workspaces.resume(workspace, progress.message)
        return running

    def _stage(
        self,
        workspace: Workspace,
        role: str,
        archive: ArchiveFile,
        checked: ScanResult,
        token: str,
        image: str,
        progress: TransferProgress,
    ) -> None:
        progress.start(f"restoring {role:<9}", checked.bytes or None)
        found: dict[str, str] = {}

        def on_line(line: str) -> None:
            parsed = scripts.parse_line(line)
            if parsed and parsed[0] == "progress":
                progress.update(parsed[1]["bytes"])
            elif parsed and parsed[0] == "result":
                found.update(parsed[1])

        job = HelperJob(
            workspace_id=workspace.id,
            owner=workspace.owner,
            purpose="restore",
            image=image,
            argv=scripts.extract_argv(archive.compression, archive.data_size, token),
            mounts=(
                HelperMount(STAGING, volume=volume_name(workspace.id, role), read_only=False),
                HelperMount(scripts.ARCHIVE, host_path=str(archive.path.resolve())),
            ),
            env={"DEV8_SWAP_PY": scripts.swap_program()},
        )
        try:
            result = self.access.run_helper(job, on_line)
            if result.exit_code == 0:
                progress.update(checked.bytes)
        finally:
            progress.finish()
        if result.exit_code != 0:
            raise ProviderError(f"restoring the {role} volume failed: {result.error_tail()}")
        if found.get("sha256") != checked.sha256:
            raise CorruptArchive(
                f"{archive.path.name} changed between the check and the restore; "
                "nothing was replaced"
            )
        if int(found.get("entries", -1)) != checked.entries:
            raise ProviderError(
                f"restoring the {role} volume created {found.get('entries')} entries, "
                f"the archive holds {checked.entries}; nothing was replaced"
            )

    def _swap(
        self, workspace: Workspace, action: str, token: str, roles: list[str], image: str
    ) -> None:
        mounts = tuple(
            HelperMount(f"/volumes/{role}", volume=volume_name(workspace.id, role), read_only=False)
            for role in roles
        )
        job = HelperJob(
            workspace_id=workspace.id,
            owner=workspace.owner,
            purpose="swap",
            image=image,
            argv=scripts.swap_argv(action, token, [m.target for m in mounts]),
            mounts=mounts,
        )
        result = self.access.run_helper(job)
        if result.exit_code != 0:
            raise ProviderError(
                f"{action} of the restored volumes failed: {result.error_tail()}; the previous "
                "data is in place"
            )


def _append_trailer(path: Path, data_hash: Any, extra: bytes) -> str:
    """Append the manifest trailer; the SHA-256 of the whole file, from the data's hash."""
    with path.open("ab") as handle:
        handle.write(extra)
        handle.flush()
        os.fsync(handle.fileno())
    whole = data_hash.copy()
    whole.update(extra)
    return whole.hexdigest()
