"""Pure decisions of backups and restores: which volumes, which compression, where each
archive goes, which volume each archive restores, and the time stamp in their names."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from dev8.backup.archive import FORMATS, SUFFIXES, ArchiveFile
from dev8.core.clock import utcnow
from dev8.core.errors import InvalidInput
from dev8.core.naming import VOLUME_ROLES

STAMP_FORMAT = "%Y%m%dT%H%M%SZ"  # in archive names and the server's backup ids
STAMP_PATTERN = r"\d{8}T\d{6}Z"  # what STAMP_FORMAT makes, for matching names


def stamp(moment: datetime | None = None) -> str:
    """A backup's time as its names carry it: ``20260101T120000Z`` (UTC)."""
    return (moment or utcnow()).astimezone(timezone.utc).strftime(STAMP_FORMAT)


def parse_stamp(text: str) -> datetime:
    """The UTC time of a stamp made by ``stamp``; ``ValueError`` if it is not one."""
    return datetime.strptime(text, STAMP_FORMAT).replace(tzinfo=timezone.utc)


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
    name: str, roles: list[str], compression: str, given: str | Path | None, when: str
) -> dict[str, Path]:
    """Where each volume's archive goes. ``given`` is a directory (existing, or written with
    a trailing slash), or one file name when a single volume is backed up; ``when`` is the
    backup's ``stamp``."""
    suffix = SUFFIXES[compression]
    output = Path(given) if given is not None else None
    if output is None or output.is_dir() or str(given).endswith("/"):
        folder = output or Path.cwd()
        if not folder.is_dir():
            raise InvalidInput(f"directory {folder} does not exist")
        return {role: folder / f"{name}-{role}-{when}{suffix}" for role in roles}
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
        role = _role_of(archive, volume, several=len(archives) > 1)
        if role is None:
            continue  # --volume picks one archive out of several
        if role in plan:
            raise InvalidInput(
                f"{plan[role].path.name} and {archive.path.name} both hold the {role} volume"
            )
        plan[role] = archive
    if not plan:
        raise InvalidInput(f"none of the archives holds the {volume} volume")
    return plan


def _role_of(archive: ArchiveFile, volume: str | None, several: bool) -> str | None:
    """The volume ``archive`` restores; None when ``--volume`` leaves it out."""
    declared = archive.manifest.volume if archive.manifest else None
    if declared is None:
        if volume is None:
            raise InvalidInput(
                f"{archive.path.name} has no dev8 manifest (made by plain tar?); say which "
                "volume it holds with --volume home|workspace|system"
            )
        return volume
    if volume is not None and declared != volume:
        if several:
            return None
        raise InvalidInput(
            f"{archive.path.name} holds the {declared} volume, not {volume}; "
            f"leave out --volume or pass --volume {declared}"
        )
    return declared
