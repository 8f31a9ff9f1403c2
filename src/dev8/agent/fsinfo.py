"""Which filesystem a path is on, read from /proc/self/mountinfo.

A home on an SMB share (Azure Files as ACI mounts it: no chmod or chown, no symbolic or hard
links, no byte-range locks) breaks `python -m venv`, npm's `.bin` links, git repositories
with symlinks, sshd's permission checks and SQLite, so the agent reports the type of the home,
the workspace and the sync shares, and warns when the home itself is on SMB.

The kernel calls an SMB mount ``cifs`` (``smb3`` on newer kernels); statfs would say
0xFF534D42 or 0xFE534D42 for the same mounts, which mountinfo already names.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

MOUNTINFO = Path("/proc/self/mountinfo")
SMB_TYPES = frozenset({"cifs", "smb3", "smb2", "smbfs"})


@dataclass(frozen=True)
class Mount:
    point: str
    fstype: str
    source: str

    @property
    def smb(self) -> bool:
        return self.fstype in SMB_TYPES


def _unescape(field: str) -> str:
    """mountinfo writes a space, tab, newline or backslash in a path as three octal digits."""
    for code in ("040", "011", "012", "134"):
        field = field.replace("\\" + code, chr(int(code, 8)))
    return field


def parse_mountinfo(text: str) -> list[Mount]:
    """The mounts in mountinfo's order (a later mount on the same point hides an earlier one);
    lines that do not parse are skipped."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if "-" not in fields[6:]:
            continue
        dash = fields.index("-", 6)
        if len(fields) < dash + 3:
            continue
        mounts.append(Mount(_unescape(fields[4]), fields[dash + 1], _unescape(fields[dash + 2])))
    return mounts


def mount_of(path: str, mounts: list[Mount]) -> Mount | None:
    """The mount ``path`` (an absolute, resolved path) is on: the longest mount point that
    contains it, the last one mounted when several share the point."""
    best: Mount | None = None
    for mount in mounts:
        point = mount.point.rstrip("/") or "/"
        inside = path == point or path.startswith(point if point == "/" else point + "/")
        if inside and (best is None or len(point) >= len(best.point.rstrip("/") or "/")):
            best = mount
    return best


def filesystem_types(paths: dict[str, Path], mountinfo: str | None = None) -> dict[str, str]:
    """Each named path's filesystem type ("unknown" when mountinfo cannot tell)."""
    if mountinfo is None:
        try:
            mountinfo = MOUNTINFO.read_text()
        except OSError:
            mountinfo = ""
    mounts = parse_mountinfo(mountinfo)
    types = {}
    for name, path in paths.items():
        mount = mount_of(os.path.realpath(path), mounts)
        types[name] = mount.fstype if mount else "unknown"
    return types


def smb_home_warning(path: Path, fstype: str) -> str | None:
    """The one line that says what breaks when the home is on an SMB share, else None."""
    if fstype not in SMB_TYPES:
        return None
    return (
        f"{path} is on an SMB share ({fstype}): no symlinks, chmod or file locks there, so "
        "python venvs, npm links, git symlinks, sshd key checks and SQLite will fail"
    )
