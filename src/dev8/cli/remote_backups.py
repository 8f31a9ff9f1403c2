"""Server mode for `dev8 backup`, `dev8 restore` and `dev8 snapshot`: the server makes and
keeps backups and snapshots (``dev8.service.kept_backups``); the archives of a backup are
then downloaded here, so that `dev8 backup` leaves the same files as in local mode."""

from __future__ import annotations

import hashlib
from pathlib import Path

from dev8.backup.archive import open_archive
from dev8.backup.progress import TransferProgress
from dev8.cli.remote import RemoteWorkspaces
from dev8.client.models import Change, Progress
from dev8.client.models import Workspace as RemoteWorkspace
from dev8.core.errors import InvalidInput
from dev8.core.naming import VOLUME_MOUNTS
from dev8.service.backups import BackupResult, compression_for, plan_outputs, roles_for
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


class RemoteBackups:
    def __init__(self, remote: RemoteWorkspaces) -> None:
        self.remote = remote

    def _model(self, name: str) -> RemoteWorkspace:
        return self.remote.client.workspaces.get(name)

    def backup(
        self,
        name: str,
        volume: str,
        output: str | None,
        archive_format: str,
        stop: bool,
        progress: TransferProgress,
    ) -> tuple[str, list[BackupResult]]:
        """Make a backup on the server and download its archives to ``output``; returns
        the id the server keeps it under and the local files."""
        roles, compression = roles_for(volume), compression_for(archive_format)
        # Checked before the server does any work: the same rules as in local mode.
        planned = plan_outputs(name, roles, compression, output, "stamp")
        one_file = output is not None and len(roles) == 1 and planned[roles[0]] == Path(output)
        model = self._model(name)
        outcome = _outcome(model.backup(volume, archive_format, stop), progress.message)
        backup_id = outcome["backup_id"]
        kept = next(b for b in model.backups() if b["id"] == backup_id)
        results = []
        for archive in kept["archives"]:
            role = archive["volume"]
            target = planned[role] if one_file else planned[role].parent / archive["file"]
            progress.message(f"downloading {archive['file']}")
            model.download_archive(backup_id, archive["file"], target)
            manifest = open_archive(target).manifest
            assert manifest is not None  # the server's backups always have one
            results.append(BackupResult(role, target, manifest, _file_sha256(target)))
        return backup_id, results

    def restore(
        self, name: str, sources: list[Path], volume: str | None, progress: TransferProgress
    ) -> list[str]:
        if len(sources) != 1 or not BACKUP_ID.fullmatch(str(sources[0])):
            raise InvalidInput(
                "in server mode --from takes the id of a backup the server keeps "
                f"(`dev8 backups {name}` lists them); archives here are not uploaded"
            )
        model = self._model(name)
        change = model.restore_backup(str(sources[0]), volume or "all")
        return _outcome(change, progress.message)["volumes"]

    def list(self, name: str) -> list[dict]:
        return self._model(name).backups()

    def delete(self, name: str, backup_id: str) -> None:
        self._model(name).delete_backup(backup_id)

    # Snapshots ---------------------------------------------------------------------------
    def snapshot(
        self, name: str, retention: dict[str, int | None], progress: TransferProgress
    ) -> SnapshotResult:
        model = self._model(name)
        return SnapshotResult(**_outcome(model.snapshot(**retention), progress.message))

    def snapshots(self, name: str) -> list[Snapshot]:
        model = self._model(name)
        return [
            Snapshot(s["id"], s["short_id"], s["time"], [VOLUME_MOUNTS[v] for v in s["volumes"]])
            for s in model.snapshots()
        ]

    def restore_snapshot(
        self, name: str, snapshot: str, volume: str, progress: TransferProgress
    ) -> list[str]:
        model = self._model(name)
        return _outcome(model.restore_snapshot(snapshot, volume), progress.message)["volumes"]
