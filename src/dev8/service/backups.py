"""Backups of a workspace's volumes into archives (the design is in docs/backups.md).

A backup streams each volume through a short-lived helper container that mounts it
read-only and writes the compressed archive straight into a file on the host; dev8 hashes
the file as it grows and appends the manifest. Restores are ``dev8.service.restores``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from dev8.backup import scripts
from dev8.backup.archive import ArchiveFile, open_archive
from dev8.backup.hashing import GrowingFileHasher, append_and_hash
from dev8.backup.manifest import Manifest, trailer
from dev8.backup.plan import compression_for, plan_outputs, roles_for, stamp
from dev8.backup.progress import TransferProgress
from dev8.backup.safety import ScanResult
from dev8.core.clock import utcnow
from dev8.core.errors import AlreadyExists
from dev8.core.naming import volume_name
from dev8.core.quotas import format_bytes
from dev8.core.states import ContainerState
from dev8.core.workspace import Workspace
from dev8.providers.base import HelperMount
from dev8.service.restores import RestoreResult, Restores, check_archive
from dev8.service.volume_jobs import VolumeJobs
from dev8.service.workspaces import WorkspaceService

__all__ = ["BackupResult", "BackupService", "RestoreResult"]

LIVE_STATES = (ContainerState.RUNNING, ContainerState.RESTARTING)


@dataclass
class BackupResult:
    role: str
    path: Path
    manifest: Manifest
    file_sha256: str  # of the whole file, as `sha256sum` prints it
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Run:
    """One backup: of which workspace, compressed how, taken while it ran or not."""

    workspace: Workspace
    compression: str
    live: bool  # crash-consistent: the workspace ran
    progress: TransferProgress


@dataclass
class _Seen:
    """What a backup helper reported on its way: the volume's counts, skipped entries."""

    counts: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # the first few
    skipped_count: int = 0

    @property
    def warnings(self) -> list[str]:
        found = [f"not archived (not a file, directory or link): {p}" for p in self.skipped]
        if self.skipped_count > len(self.skipped):
            found.append(f"... and {self.skipped_count - len(self.skipped)} more not archived")
        return found


class BackupService:
    def __init__(self, workspaces: WorkspaceService) -> None:
        self.workspaces = workspaces
        self.jobs = VolumeJobs(workspaces.provider, workspaces.owner, "run backups")
        self.restores = Restores(workspaces, self.jobs)

    # Backup ------------------------------------------------------------------------------
    def backup(
        self,
        name: str,
        *,
        volume: str = "all",
        output: str | Path | None = None,
        archive_format: str = "tar.zst",
        stop: bool = False,
        progress: TransferProgress | None = None,
    ) -> list[BackupResult]:
        """One archive per volume (``all``, or one role) into ``output``; also of a removed
        workspace whose volumes were kept. ``stop`` stops a running one meanwhile."""
        progress = progress or TransferProgress()
        workspace = self.workspaces.find_known(name)
        roles, compression = roles_for(volume), compression_for(archive_format)
        targets = plan_outputs(workspace.name, roles, compression, output, stamp())
        for path in targets.values():
            if path.exists():
                raise AlreadyExists(f"{path} exists; choose another name or directory")
        self.jobs.check_ready(host_paths=True)
        with self.workspaces.operation(workspace, "backup"):
            stopped = stop and self.workspaces.stop_for(
                workspace, "for a consistent backup", progress.message
            )
            live = (
                not stopped and self.workspaces.provider.status(workspace.id).state in LIVE_STATES
            )
            if live:
                progress.message(
                    f"{name} is running: the backup is crash-consistent (like pulling the "
                    "plug); use --stop for a consistent one"
                )
            try:
                return self._backup_all(_Run(workspace, compression, live, progress), targets)
            finally:
                if stopped:
                    self.workspaces.resume(workspace, progress.message)

    def _backup_all(self, run: _Run, targets: dict[str, Path]) -> list[BackupResult]:
        """Every volume's archive, or none: a failure removes those already written."""
        results: list[BackupResult] = []
        try:
            self.jobs.remove_stale(run.workspace.id)
            for role, path in targets.items():
                results.append(self._backup_volume(run, role, path))
        except BaseException:
            for result in results:
                result.path.unlink(missing_ok=True)
            raise
        return results

    def _backup_volume(self, run: _Run, role: str, path: Path) -> BackupResult:
        """The ``role`` volume's archive at ``path``, complete with its manifest or absent."""
        partial = path.with_name(f".{path.name}.partial")
        os.close(os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        try:
            with GrowingFileHasher(partial) as hasher:
                seen = self._run_helper(run, role, partial, hasher)
                sha256, size = hasher.finish()
            run.progress.update(seen.counts.get("bytes", 0), f"{format_bytes(size)} written")
            manifest = _manifest(run, role, seen, sha256, size)
            file_sha256 = append_and_hash(partial, hasher, trailer(manifest, run.compression))
            os.link(partial, path)  # fails rather than overwrite a file that appeared meanwhile
        except FileExistsError:
            raise AlreadyExists(f"{path} appeared during the backup; nothing overwritten") from None
        finally:
            partial.unlink(missing_ok=True)
            run.progress.finish()
        return BackupResult(role, path, manifest, file_sha256, seen.warnings)

    def _run_helper(self, run: _Run, role: str, partial: Path, hasher: GrowingFileHasher) -> _Seen:
        """Archive the ``role`` volume into the file ``partial``; what the helper reported."""
        seen, progress, workspace = _Seen(), run.progress, run.workspace

        def on_line(line: str) -> None:
            parsed = scripts.parse_line(line)
            kind, values = parsed if parsed else ("", {})
            if kind == "scan":
                seen.counts = {key: int(value) for key, value in values.items()}
                progress.start(f"{role:<9}", seen.counts.get("bytes") or None)
            elif kind == "progress":
                progress.update(values["bytes"], f"{format_bytes(hasher.size)} written")
            elif kind == "skipped":
                seen.skipped, seen.skipped_count = values["paths"], values["count"]

        job = self.jobs.job(
            workspace,
            "backup",
            scripts.backup_argv(run.compression),
            [
                HelperMount(scripts.SOURCE, volume=volume_name(workspace.id, role)),
                HelperMount(scripts.ARCHIVE, host_path=str(partial), read_only=False),
            ],
        )
        self.jobs.run_checked(job, f"backing up the {role} volume failed", on_line)
        return seen

    # Checking and restoring ----------------------------------------------------------------
    def verify(
        self, path: Path, progress: TransferProgress | None = None
    ) -> tuple[ArchiveFile, ScanResult]:
        """Read a whole archive as a restore would, writing nothing."""
        archive = open_archive(path)
        return archive, check_archive(archive, progress or TransferProgress())

    def restore(
        self,
        name: str,
        sources: list[Path],
        volume: str | None = None,
        as_name: str | None = None,
        progress: TransferProgress | None = None,
    ) -> RestoreResult:
        """Restore archives into ``name`` (created if it does not exist), or ``as_name``."""
        return self.restores.from_archives(
            name, sources, volume=volume, as_name=as_name, progress=progress or TransferProgress()
        )


def _manifest(run: _Run, role: str, seen: _Seen, sha256: str, size: int) -> Manifest:
    workspace = run.workspace
    return Manifest(
        workspace_id=workspace.id,
        workspace_name=workspace.name,
        image=workspace.image_ref,
        image_id=workspace.image_id,
        volume=role,
        created_at=utcnow().isoformat(timespec="seconds"),
        compression=run.compression,
        entries=seen.counts.get("entries", 0),
        files=seen.counts.get("files", 0),
        bytes=seen.counts.get("bytes", 0),
        archive_sha256=sha256,
        archive_bytes=size,
        crash_consistent=run.live,
        skipped=seen.skipped,
        skipped_count=seen.skipped_count,
    )
