"""Backups (archives the server keeps) and snapshots (in its restic repository)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from dev8.backup.archive import ArchiveFile
from dev8.server.schemas.base import Input
from dev8.service.kept_backups import KeptBackup

Volume = Literal["all", "home", "workspace", "system"]


class BackupCreate(Input):
    volume: Volume = Field("all", description="One volume, or all (one archive each).")
    format: Literal["tar.zst", "tar.gz"] = Field(
        "tar.zst", description="tar.zst (multi-threaded zstd) or tar.gz (plain `tar xzf`)."
    )
    stop: bool = Field(False, description="Stop a running workspace for a consistent backup.")


class ArchivePublic(BaseModel):
    file: str
    volume: str | None = Field(description="From the archive's manifest.")
    size_bytes: int = Field(description="The archive file.")
    data_bytes: int | None = Field(description="What the volume held.")
    files: int | None
    sha256: str | None = Field(description="Of the compressed tar stream, as recorded.")
    crash_consistent: bool | None = Field(description="Made while the workspace ran.")
    image: str | None

    @classmethod
    def of(cls, archive: ArchiveFile) -> ArchivePublic:
        manifest = archive.manifest
        return cls(
            file=archive.path.name,
            volume=manifest.volume if manifest else None,
            size_bytes=archive.size,
            data_bytes=manifest.bytes if manifest else None,
            files=manifest.files if manifest else None,
            sha256=manifest.archive_sha256 if manifest else None,
            crash_consistent=manifest.crash_consistent if manifest else None,
            image=manifest.image if manifest else None,
        )


class BackupPublic(BaseModel):
    id: str
    created_at: datetime
    archives: list[ArchivePublic]

    @classmethod
    def of(cls, backup: KeptBackup) -> BackupPublic:
        archives = [ArchivePublic.of(archive) for archive in backup.archives]
        return cls(id=backup.id, created_at=backup.created_at, archives=archives)


class VolumeRestore(Input):
    volume: Volume = Field("all", description="Restore one volume, or all the source holds.")


class SnapshotCreate(Input):
    keep_last: int | None = Field(None, ge=1, le=10000)
    keep_daily: int | None = Field(None, ge=1, le=10000)
    keep_weekly: int | None = Field(None, ge=1, le=10000)


class SnapshotPublic(BaseModel):
    id: str
    short_id: str
    time: datetime
    volumes: list[str]
