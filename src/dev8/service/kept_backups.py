"""Backups and snapshots the server makes and keeps, as queued operations.

A request checks what it can at once and queues an operation (``backup``, ``restore``,
``snapshot``, ``snapshot-restore``); the reconciler carries it out through the same
``BackupService`` and ``SnapshotService`` as the CLI, inside the operation it runs (see
``WorkspaceService.operation``). Archives live in the server's directory, one folder per
backup under the workspace's id: ``backups/<workspace id>/<backup id>/<archive>``.

Purging a workspace deletes its backups too (its ``purge`` runs here): nothing could reach
them once the record is gone. A member keeps at most ``DEV8_MEMBER_MAX_KEPT_BACKUPS``,
counted again, under the owner's lock, when each backup starts.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from dev8.backup.archive import SUFFIXES, ArchiveFile, open_archive
from dev8.backup.plan import STAMP_PATTERN, compression_for, parse_stamp, roles_for, stamp
from dev8.backup.progress import TransferProgress
from dev8.core.errors import InvalidInput, NotFound
from dev8.core.workspace import Action, Workspace
from dev8.service.backups import BackupService
from dev8.service.policy import KEEP_AT_MOST, Limits, check_kept_backups, owner_lock
from dev8.service.snapshots import SnapshotService
from dev8.service.workspaces import (
    LIFECYCLE_ACTIONS,
    ActionHandler,
    Progress,
    WorkspaceService,
)

BACKUP_ID = re.compile(STAMP_PATTERN + r"-[0-9a-f]{6}")  # the time stamp, a random part
SNAPSHOT_ID = re.compile(r"[0-9a-f]{8,64}|latest")
ARCHIVE_SUFFIXES = tuple(SUFFIXES.values())
EVENT_EVERY_S = 5.0


@dataclass
class KeptBackup:
    id: str
    created_at: str
    archives: list[ArchiveFile]


class EventProgress(TransferProgress):
    """Progress of volume work as operation events: messages, and a percentage at most
    every few seconds (each event is a database row)."""

    def __init__(self, report: Progress) -> None:
        self.report = report
        self.label, self.last = "", 0.0
        self.total: int | None = None

    def message(self, text: str) -> None:
        self.report(text)

    def start(self, label: str, total: int | None) -> None:
        self.label, self.total, self.last = label.strip(), total, time.monotonic()
        self.report(self.label)

    def update(self, done: int, detail: str = "") -> None:
        if not self.total or time.monotonic() - self.last < EVENT_EVERY_S:
            return
        self.last = time.monotonic()
        self.report(f"{self.label}: {min(100, done * 100 // self.total)}%")

    def finish(self) -> None:
        self.report(f"{self.label}: done")


class KeptBackups:
    def __init__(self, root: Path, snapshot_home: Path) -> None:
        self.root = root
        self.snapshot_home = snapshot_home

    # Reading what is kept ----------------------------------------------------------------
    def list(self, workspace: Workspace) -> list[KeptBackup]:
        """The workspace's complete backups, oldest first."""
        folder = self.root / workspace.id
        found = [
            self._read(folder / entry.name)
            for entry in (sorted(folder.iterdir()) if folder.is_dir() else [])
            if BACKUP_ID.fullmatch(entry.name)
        ]
        return [backup for backup in found if backup is not None and backup.archives]

    def count(self, workspace_ids: Sequence[str]) -> int:
        """How many backups the server holds of these workspaces, complete or being made."""
        return sum(self._count(self.root / id_) for id_ in workspace_ids)

    @staticmethod
    def _count(folder: Path) -> int:
        if not folder.is_dir():
            return 0
        return sum(1 for entry in os.scandir(folder) if BACKUP_ID.fullmatch(entry.name))

    def get(self, workspace: Workspace, backup_id: str) -> KeptBackup:
        folder = self.root / workspace.id / backup_id
        backup = self._read(folder) if BACKUP_ID.fullmatch(backup_id) else None
        if backup is None or not backup.archives:
            raise NotFound(f"no backup {backup_id!r} of {workspace.name}")
        return backup

    def archive_path(self, workspace: Workspace, backup_id: str, file: str) -> Path:
        """One archive of a backup, by the name the listing gives (nothing else is served)."""
        for archive in self.get(workspace, backup_id).archives:
            if archive.path.name == file:
                return archive.path
        raise NotFound(f"backup {backup_id} of {workspace.name} has no archive {file!r}")

    def delete(self, workspace: Workspace, backup_id: str) -> None:
        backup = self.get(workspace, backup_id)
        shutil.rmtree(backup.archives[0].path.parent)

    @staticmethod
    def _read(folder: Path) -> KeptBackup | None:
        if not folder.is_dir():
            return None
        archives = [
            open_archive(path)
            for path in sorted(folder.iterdir())
            if path.name.endswith(ARCHIVE_SUFFIXES) and not path.name.startswith(".")
        ]
        created = parse_stamp(folder.name.split("-")[0]).isoformat(timespec="seconds")
        return KeptBackup(folder.name, created, archives)

    # Checking a request before it is queued ----------------------------------------------
    @staticmethod
    def new_backup_params(volume: str, archive_format: str, stop: bool) -> dict:
        roles_for(volume)
        compression_for(archive_format)
        return {
            "backup_id": f"{stamp()}-{secrets.token_hex(3)}",
            "volume": volume,
            "format": archive_format,
            "stop": stop,
        }

    def restore_params(self, workspace: Workspace, backup_id: str, volume: str) -> dict:
        roles = roles_for(volume)
        backup = self.get(workspace, backup_id)
        chosen = [a for a in backup.archives if a.manifest and a.manifest.volume in roles]
        if not chosen:
            raise NotFound(f"backup {backup_id} of {workspace.name} holds no {volume} volume")
        return {"backup_id": backup_id, "files": [archive.path.name for archive in chosen]}

    @staticmethod
    def snapshot_restore_params(snapshot_id: str, volume: str) -> dict:
        roles_for(volume)
        if not SNAPSHOT_ID.fullmatch(snapshot_id):
            raise InvalidInput(f"{snapshot_id!r} is not a snapshot id (hex) or 'latest'")
        return {"snapshot_id": snapshot_id, "volume": volume}

    # Carrying out queued operations ------------------------------------------------------
    def handlers(self) -> dict[str, ActionHandler]:
        return {
            Action.PURGE: self._purge,
            "backup": self._backup,
            "restore": self._restore,
            "snapshot": self._snapshot,
            "snapshot-restore": self._snapshot_restore,
        }

    def snapshots(self, service: WorkspaceService) -> SnapshotService:
        return SnapshotService(service, home=self.snapshot_home)

    def _purge(
        self, service: WorkspaceService, workspace: Workspace, params: dict, report: Progress
    ) -> dict | None:
        """The purge of ``LIFECYCLE_ACTIONS``, then the workspace's backups (after the
        volumes: a purge that fails there is run again, backups and all)."""
        outcome = LIFECYCLE_ACTIONS[Action.PURGE].handler(service, workspace, params, report)
        folder = self.root / workspace.id
        deleted = self._count(folder)
        if folder.exists():
            shutil.rmtree(folder)
        return {**(outcome or {}), "deleted_backups": deleted}

    def _backup(
        self, service: WorkspaceService, workspace: Workspace, params: dict, report: Progress
    ) -> dict:
        folder = self.root / workspace.id / params["backup_id"]
        with service.store.lock(owner_lock(workspace.owner)):
            self._check_room(service, workspace, params)
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        # A resumed backup starts again: what an interrupted attempt left goes first.
        for leftover in folder.iterdir():
            leftover.unlink()
        try:
            results = BackupService(service).backup(
                workspace.name,
                volume=params["volume"],
                output=f"{folder}/",
                archive_format=params["format"],
                stop=params["stop"],
                progress=EventProgress(report),
            )
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return {
            "backup_id": params["backup_id"],
            "archives": [result.path.name for result in results],
        }

    def _check_room(self, service: WorkspaceService, workspace: Workspace, params: dict) -> None:
        """``PolicyRefused`` when the owner keeps as many backups as the request allowed (a
        resumed backup, whose folder is there, had its room)."""
        limit = params.get(KEEP_AT_MOST) or 0
        if not limit or (self.root / workspace.id / params["backup_id"]).is_dir():
            return
        owned = service.store.list(owner=workspace.owner, include_removed=True, with_secrets=False)
        check_kept_backups(Limits(max_kept_backups=limit), self.count([w.id for w in owned]) + 1)

    def _restore(
        self, service: WorkspaceService, workspace: Workspace, params: dict, report: Progress
    ) -> dict:
        paths = [
            self.archive_path(workspace, params["backup_id"], file) for file in params["files"]
        ]
        result = BackupService(service).restore(
            workspace.name, paths, progress=EventProgress(report)
        )
        return {"backup_id": params["backup_id"], "volumes": result.roles}

    def _snapshot(
        self, service: WorkspaceService, workspace: Workspace, params: dict, report: Progress
    ) -> dict:
        result = self.snapshots(service).create(
            workspace.name,
            keep_last=params.get("keep_last"),
            keep_daily=params.get("keep_daily"),
            keep_weekly=params.get("keep_weekly"),
            progress=EventProgress(report),
        )
        return asdict(result)

    def _snapshot_restore(
        self, service: WorkspaceService, workspace: Workspace, params: dict, report: Progress
    ) -> dict:
        _, roles = self.snapshots(service).restore(
            workspace.name,
            params["snapshot_id"],
            volume=params["volume"],
            progress=EventProgress(report),
        )
        return {"snapshot_id": params["snapshot_id"], "volumes": roles}
