"""Server mode for `dev8 backup`, `dev8 restore` and `dev8 snapshot`: ``BackupBackend`` and
``SnapshotBackend`` through the API. The server makes and keeps backups and snapshots
(``dev8.service.kept_backups``); the archives of a backup are then downloaded here, so that
`dev8 backup` leaves the same files as in local mode."""

from __future__ import annotations

import builtins
import hashlib
from pathlib import Path

from dev8.backup.archive import open_archive
from dev8.backup.plan import compression_for, plan_outputs, roles_for
from dev8.backup.progress import TransferProgress
from dev8.cli.remote import RemoteWorkspaces
from dev8.client.models import Change, Progress
from dev8.client.models import Workspace as RemoteWorkspace
from dev8.core.errors import CorruptArchive, InvalidInput
from dev8.core.naming import VOLUME_MOUNTS
from dev8.core.workspace import Workspace
from dev8.service.backups import BackupResult, RestoreResult
from dev8.service.kept_backups import BACKUP_ID
from dev8.service.snapshots import Snapshot, SnapshotResult

LONG_WAIT_S = 12 * 3600.0  # a backup of a few hundred GiB


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _outcome(change: Change, progress: Progress) -> dict:
    for operation in change.operations:
        operation.wait(progress, LONG_WAIT_S)
    return change.operations[-1].attrs.get("outcome") or {}


def _local_mode_only(option: str) -> InvalidInput:
    return InvalidInput(f"{option} works in local mode only")


class RemoteBackups:
    """``BackupBackend`` and ``KeepsBackups`` from a dev8 server; lists and deletes the
    backups it keeps."""

    def __init__(self, remote: RemoteWorkspaces) -> None:
        self.remote = remote
        self.kept_as: str | None = None

    def _model(self, name: str) -> RemoteWorkspace:
        return self.remote.client.workspaces.get(name)

    def backup(
        self,
        name: str,
        *,
        volume: str = "all",
        output: str | Path | None = None,
        archive_format: str = "tar.zst",
        stop: bool = False,
        progress: TransferProgress | None = None,
    ) -> builtins.list[BackupResult]:
        """Make a backup on the server and download its archives to ``output``; ``kept_as``
        is then the id the server keeps it under."""
        progress = progress or TransferProgress()
        roles, compression = roles_for(volume), compression_for(archive_format)
        # Checked before the server does any work: the same rules as in local mode.
        planned = plan_outputs(name, roles, compression, output, "stamp")
        one_file = output is not None and len(roles) == 1 and planned[roles[0]] == Path(output)
        model = self._model(name)
        backup_id = _outcome(model.backup(volume, archive_format, stop), progress.message)[
            "backup_id"
        ]
        kept = next(b for b in model.backups() if b["id"] == backup_id)
        results = []
        for archive in kept["archives"]:
            target = planned[archive["volume"]]
            target = target if one_file else target.parent / archive["file"]
            progress.message(f"downloading {archive['file']}")
            model.download_archive(backup_id, archive["file"], target)
            results.append(self._result(archive["volume"], target))
        self.kept_as = backup_id
        return results

    @staticmethod
    def _result(role: str, path: Path) -> BackupResult:
        manifest = open_archive(path).manifest
        if manifest is None:
            raise CorruptArchive(f"the server sent {path.name} without a dev8 manifest")
        return BackupResult(role, path, manifest, _file_sha256(path))

    def restore(
        self,
        name: str,
        sources: builtins.list[Path],
        volume: str | None = None,
        as_name: str | None = None,
        progress: TransferProgress | None = None,
    ) -> RestoreResult:
        if as_name is not None:
            raise _local_mode_only("--as")
        if len(sources) != 1 or not BACKUP_ID.fullmatch(str(sources[0])):
            raise InvalidInput(
                "in server mode --from takes the id of a backup the server keeps "
                f"(`dev8 backups {name}` lists them); archives here are not uploaded"
            )
        progress = progress or TransferProgress()
        change = self._model(name).restore_backup(str(sources[0]), volume or "all")
        roles = _outcome(change, progress.message)["volumes"]
        return RestoreResult(name, roles, entries={}, created=False, restarted=False)

    def list(self, name: str) -> builtins.list[dict]:
        return self._model(name).backups()

    def delete(self, name: str, backup_id: str) -> None:
        self._model(name).delete_backup(backup_id)


class RemoteSnapshots:
    """``SnapshotBackend`` from a dev8 server (which keeps the repository)."""

    def __init__(self, remote: RemoteWorkspaces) -> None:
        self.remote = remote

    def _model(self, name: str) -> RemoteWorkspace:
        return self.remote.client.workspaces.get(name)

    def create(
        self,
        name: str,
        keep_last: int | None = None,
        keep_daily: int | None = None,
        keep_weekly: int | None = None,
        progress: TransferProgress | None = None,
    ) -> SnapshotResult:
        progress = progress or TransferProgress()
        change = self._model(name).snapshot(
            keep_last=keep_last, keep_daily=keep_daily, keep_weekly=keep_weekly
        )
        return SnapshotResult(**_outcome(change, progress.message))

    def list(self, name: str) -> builtins.list[Snapshot]:
        return [
            Snapshot(s["id"], s["short_id"], s["time"], [VOLUME_MOUNTS[v] for v in s["volumes"]])
            for s in self._model(name).snapshots()
        ]

    def restore(
        self,
        name: str,
        snapshot: str,
        volume: str = "all",
        as_name: str | None = None,
        progress: TransferProgress | None = None,
    ) -> tuple[Workspace, builtins.list[str]]:
        if as_name is not None:
            raise _local_mode_only("--as")
        progress = progress or TransferProgress()
        model = self._model(name)
        roles = _outcome(model.restore_snapshot(snapshot, volume), progress.message)["volumes"]
        return model.reload().to_workspace(), roles
