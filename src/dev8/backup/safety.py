"""Checking an archive before anything of it is written.

Every member is looked at, in order, the way tar would extract it into an empty volume:

- names must be relative and without a ``..`` component;
- only regular files, directories, symbolic links and hard links; device nodes, FIFOs and
  anything stranger are refused;
- no member may be written through a symbolic link the archive made earlier (the classic
  "link to /etc, then a file under it"), and a hard link must point at an earlier regular
  file of the archive, never outside it;
- a relative symbolic link must not climb out of the volume with ``..``. Absolute symbolic
  links are kept as they are: inside a workspace they name files of the image or of another
  volume (``.venv/bin/python -> /usr/bin/python3``), and restoring never follows them.

The scan also hashes the raw bytes, to compare with the manifest, and counts what tar will
create, to compare with what the restore created.
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field

from dev8.backup.archive import (
    DECOMPRESS_ERRORS,
    ArchiveFile,
    HashingReader,
    decompressed,
)
from dev8.core.errors import CorruptArchive, UnsafeArchive
from dev8.core.naming import RESTORE_DIR

FILE, DIR, SYMLINK = "file", "dir", "symlink"
# What a damaged archive raises while it is read.
CORRUPT: tuple[type[BaseException], ...] = (tarfile.TarError, *DECOMPRESS_ERRORS)
_REFUSED_TYPES = {
    tarfile.CHRTYPE: "a character device",
    tarfile.BLKTYPE: "a block device",
    tarfile.FIFOTYPE: "a FIFO",
}


@dataclass
class ScanResult:
    sha256: str
    raw_bytes: int  # compressed bytes read (the data before any manifest trailer)
    entries: int  # paths tar creates, the volume's top directory included
    files: int
    bytes: int  # sum of the regular files' sizes
    members: int  # tar members read


@dataclass
class _Tree:
    """What extracting the members so far has created: kind by normalised path."""

    kinds: dict[str, str] = field(default_factory=lambda: {"": DIR})
    sizes: dict[str, int] = field(default_factory=dict)

    def add(self, path: str, kind: str, size: int = 0) -> None:
        parts = path.split("/") if path else []
        for depth in range(1, len(parts)):
            self.kinds.setdefault("/".join(parts[:depth]), DIR)
        self.kinds[path] = kind
        if kind == FILE:
            self.sizes[path] = size
        else:
            self.sizes.pop(path, None)

    def symlink_on_the_way(self, path: str) -> str | None:
        """The first parent of ``path`` that is currently a symbolic link."""
        parts = path.split("/")
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            if self.kinds.get(parent) == SYMLINK:
                return parent
        return None


def normalise(name: str, what: str = "member") -> str:
    """``./a//b/`` -> ``a/b``; the top directory is ``""``. Refuses absolute names and any
    ``..`` component (tar refuses those too, but only after writing the other members)."""
    if name.startswith("/"):
        raise UnsafeArchive(f"{what} {name!r} has an absolute path")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchive(f"{what} {name!r} has a '..' component")
    return "/".join(parts)


def _check_member(member: tarfile.TarInfo, tree: _Tree) -> None:
    path = normalise(member.name)
    if path.split("/")[0] == RESTORE_DIR:
        raise UnsafeArchive(f"member {member.name!r} uses {RESTORE_DIR}, which dev8 reserves")
    if member.type in _REFUSED_TYPES:
        raise UnsafeArchive(
            f"member {member.name!r} is {_REFUSED_TYPES[member.type]}; a volume archive "
            "may hold only files, directories and links"
        )
    through = tree.symlink_on_the_way(path)
    if through is not None:
        raise UnsafeArchive(
            f"member {member.name!r} would be written through the symbolic link {through!r}"
        )
    if path == "" and not member.isdir():
        raise UnsafeArchive("the archive's top entry is not a directory")
    if member.issym():
        _check_symlink(member, path)
        tree.add(path, SYMLINK)
    elif member.islnk():
        _check_hardlink(member, tree)
        tree.add(path, FILE, tree.sizes.get(normalise(member.linkname), 0))
    elif member.isdir():
        tree.add(path, DIR)
    elif member.isreg():
        tree.add(path, FILE, member.size)
    else:
        raise UnsafeArchive(f"member {member.name!r} has an unsupported type {member.type!r}")


def _check_symlink(member: tarfile.TarInfo, path: str) -> None:
    target = member.linkname
    if not target:
        raise UnsafeArchive(f"symbolic link {member.name!r} has an empty target")
    if target.startswith("/"):
        return
    position = path.split("/")[:-1]
    for part in target.split("/"):
        if part == "..":
            if not position:
                raise UnsafeArchive(
                    f"symbolic link {member.name!r} -> {target!r} points outside the volume"
                )
            position.pop()
        elif part not in ("", "."):
            position.append(part)


def _check_hardlink(member: tarfile.TarInfo, tree: _Tree) -> None:
    target = normalise(member.linkname, what=f"hard link {member.name!r} to")
    if tree.kinds.get(target) != FILE or tree.symlink_on_the_way(target):
        raise UnsafeArchive(
            f"hard link {member.name!r} -> {member.linkname!r} points outside the volume "
            "(not at an earlier file of the archive)"
        )


def scan(archive: ArchiveFile, on_bytes: Callable[[int], None] | None = None) -> ScanResult:
    """Read the whole archive; raise ``UnsafeArchive`` or ``CorruptArchive`` at the first
    problem, including a checksum that does not match the manifest's."""
    tree = _Tree()
    members = 0
    with archive.path.open("rb") as handle:
        raw = HashingReader(handle, archive.data_size, on_bytes)
        try:
            with tarfile.open(fileobj=decompressed(archive, raw), mode="r:") as stream:
                for member in stream:
                    _check_member(member, tree)
                    members += 1
            raw.drain()
        except CORRUPT as exc:
            raise CorruptArchive(
                f"{archive.path.name} is corrupt or truncated ({_reason(exc)}); "
                "nothing was restored"
            ) from None
        finally:
            sha256 = raw.finish()
    if members == 0:
        raise CorruptArchive(f"{archive.path.name} holds no files")
    result = ScanResult(
        sha256=sha256,
        raw_bytes=raw.count,
        entries=len(tree.kinds),
        files=sum(1 for kind in tree.kinds.values() if kind == FILE),
        bytes=sum(tree.sizes.values()),
        members=members,
    )
    _check_manifest(archive, result)
    return result


def _check_manifest(archive: ArchiveFile, result: ScanResult) -> None:
    manifest = archive.manifest
    if manifest is None:
        return
    if manifest.archive_sha256 != result.sha256 or manifest.archive_bytes != result.raw_bytes:
        raise CorruptArchive(
            f"{archive.path.name} does not match its manifest's checksum (sha256 "
            f"{result.sha256[:12]}..., manifest says {manifest.archive_sha256[:12]}...); "
            "the file was changed or damaged after the backup"
        )


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:120]
