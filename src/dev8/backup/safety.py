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

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NoReturn, TypeAlias

from dev8.backup.archive import (
    DECOMPRESS_ERRORS,
    ArchiveFile,
    HashingReader,
    decompressed,
)
from dev8.backup.tar_headers import DIR, HARDLINK, SYMLINK, Member, members, shown
from dev8.core.errors import CorruptArchive, UnsafeArchive
from dev8.core.naming import RESTORE_DIR

# What a damaged archive raises while it is read.
CORRUPT: tuple[type[BaseException], ...] = (*DECOMPRESS_ERRORS, CorruptArchive)

# The tree extraction builds: a directory is a dict of its entries, a file its size, a
# symbolic link ``_LINK``. Walking it costs one step per path component, so a member at
# depth 2000 costs 2000 steps, not 2000 joins of up to 2000 components.
_LINK = -1
_Node: TypeAlias = "dict[str, _Node] | int"


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
    """What extracting the members so far has created."""

    root: dict[str, _Node] = field(default_factory=dict)
    entries: int = 1  # the top directory

    def add(self, member: Member, parts: list[str], node: _Node) -> None:
        """Put ``node`` at ``parts``, making the directories on the way; refuses a path
        that goes through a symbolic link or a file."""
        parent = self.root
        for depth, part in enumerate(parts[:-1]):
            child = parent.get(part)
            if child is None:
                child = parent[part] = {}
                self.entries += 1
            elif not isinstance(child, dict):
                _refuse_through(member, parts[: depth + 1], child)
            parent = child
        if parts[-1] not in parent:
            self.entries += 1
        elif isinstance(parent[parts[-1]], dict) and isinstance(node, dict):
            return  # a directory again: tar keeps what is in it
        parent[parts[-1]] = node

    def file_size(self, parts: list[str]) -> int | None:
        """The size of the regular file at ``parts``, reached without a link; else None."""
        node: _Node = self.root
        for part in parts:
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node if isinstance(node, int) and node != _LINK else None

    def totals(self) -> tuple[int, int]:
        """Regular files and the sum of their sizes."""
        files = size = 0
        stack = [self.root]
        while stack:
            for node in stack.pop().values():
                if isinstance(node, dict):
                    stack.append(node)
                elif node != _LINK:
                    files, size = files + 1, size + node
        return files, size


def _refuse_through(member: Member, parts: list[str], node: int) -> NoReturn:
    what = "symbolic link" if node == _LINK else "file"
    raise UnsafeArchive(
        f"member {shown(member.name)} would be written through the {what} {shown('/'.join(parts))}"
    )


def components(name: str, what: str = "member") -> list[str]:
    """``./a//b/`` -> ``["a", "b"]``; the top directory is ``[]``. Refuses absolute names and
    any ``..`` component (tar refuses those too, but only after writing the other members)."""
    if name.startswith("/"):
        raise UnsafeArchive(f"{what} {shown(name)} has an absolute path")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchive(f"{what} {shown(name)} has a '..' component")
    return parts


def normalise(name: str, what: str = "member") -> str:
    return "/".join(components(name, what))


def _check_member(member: Member, tree: _Tree) -> None:
    parts = components(member.name)
    if parts[:1] == [RESTORE_DIR]:
        raise UnsafeArchive(f"member {shown(member.name)} uses {RESTORE_DIR}, which dev8 reserves")
    if not parts:
        if member.kind != DIR:
            raise UnsafeArchive("the archive's top entry is not a directory")
        return
    if member.kind == SYMLINK:
        _check_symlink(member, parts)
        tree.add(member, parts, _LINK)
    elif member.kind == HARDLINK:
        tree.add(member, parts, _hardlink_size(member, tree))
    elif member.kind == DIR:
        tree.add(member, parts, {})
    else:
        tree.add(member, parts, member.size)


def _check_symlink(member: Member, parts: list[str]) -> None:
    target = member.linkname
    if not target:
        raise UnsafeArchive(f"symbolic link {shown(member.name)} has an empty target")
    if target.startswith("/"):
        return
    depth = len(parts) - 1
    for part in target.split("/"):
        if part == "..":
            if depth == 0:
                raise UnsafeArchive(
                    f"symbolic link {shown(member.name)} -> {shown(target)} points outside "
                    "the volume"
                )
            depth -= 1
        elif part not in ("", "."):
            depth += 1


def _hardlink_size(member: Member, tree: _Tree) -> int:
    target = components(member.linkname, what=f"hard link {shown(member.name)} to")
    size = tree.file_size(target)
    if size is None:
        raise UnsafeArchive(
            f"hard link {shown(member.name)} -> {shown(member.linkname)} points outside the "
            "volume (not at an earlier file of the archive)"
        )
    return size


def scan(archive: ArchiveFile, on_bytes: Callable[[int], None] | None = None) -> ScanResult:
    """Read the whole archive; raise ``UnsafeArchive`` or ``CorruptArchive`` at the first
    problem, including a checksum that does not match the manifest's."""
    tree = _Tree()
    count = 0
    with archive.path.open("rb") as handle:
        raw = HashingReader(handle, archive.data_size, on_bytes)
        try:
            for member in members(decompressed(archive, raw)):
                _check_member(member, tree)
                count += 1
            raw.drain()
        except CORRUPT as exc:
            raise CorruptArchive(
                f"{archive.path.name} is corrupt or truncated ({_reason(exc)}); "
                "nothing was restored"
            ) from None
        finally:
            sha256 = raw.finish()
    if count == 0:
        raise CorruptArchive(f"{archive.path.name} holds no files")
    files, size = tree.totals()
    result = ScanResult(
        sha256=sha256,
        raw_bytes=raw.count,
        entries=tree.entries,
        files=files,
        bytes=size,
        members=count,
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
