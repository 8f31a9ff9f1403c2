"""Which filesystem the home, /workspace and the sync shares are on. The mount tables are
fake mountinfo text shaped like a Docker container's and an ACI container group's (Azure
Files mounted by the kernel's SMB client as ``cifs``); one test reads this machine's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from dev8.agent import fsinfo
from dev8.agent.__main__ import Agent
from dev8.agent.config import AgentConfig
from dev8.agent.fsinfo import (
    filesystem_types,
    mount_of,
    parse_mountinfo,
    smb_home_warning,
)

# The root an overlay, the shares SMB (cifs, and smb3 as newer kernels name it), a path
# with a space, and a tmpfs mounted over /home/dev8/tmp then hidden by a second mount.
MOUNTINFO = """\
406 342 0:111 / / rw,relatime master:9 - overlay overlay rw,lowerdir=/l1:/l2,upperdir=/u
407 406 0:114 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
520 406 0:60 / /mnt/dev8-store/home rw,relatime - cifs //acct.file.core.windows.net/u-home rw
521 406 0:61 / /mnt/dev8-store/workspace rw,relatime - smb3 //acct.file.core.windows.net/u-ws rw
530 406 0:70 / /data/my\\040files rw - ext4 /dev/sdb1 rw
540 406 0:80 / /home/dev8/tmp rw - tmpfs tmpfs rw
541 406 0:81 / /home/dev8/tmp rw - xfs /dev/sdc rw
not a mountinfo line
"""


def test_mountinfo_is_parsed_with_escaped_paths() -> None:
    mounts = parse_mountinfo(MOUNTINFO)
    assert [m.point for m in mounts][:3] == ["/", "/proc", "/mnt/dev8-store/home"]
    spaced = next(m for m in mounts if m.fstype == "ext4")
    assert spaced.point == "/data/my files" and spaced.source == "/dev/sdb1"


def test_the_longest_mount_point_holding_the_path_wins() -> None:
    mounts = parse_mountinfo(MOUNTINFO)
    assert mount_of("/home/dev8", mounts).fstype == "overlay"  # type: ignore[union-attr]
    share = mount_of("/mnt/dev8-store/home/restic/config", mounts)
    assert share is not None and share.smb and share.fstype == "cifs"
    # A sibling whose name only starts like a mount point is not inside it.
    assert mount_of("/mnt/dev8-store/homework", mounts).fstype == "overlay"  # type: ignore[union-attr]


def test_a_later_mount_on_the_same_point_hides_the_earlier() -> None:
    mounts = parse_mountinfo(MOUNTINFO)
    assert mount_of("/home/dev8/tmp/x", mounts).fstype == "xfs"  # type: ignore[union-attr]


def test_types_of_the_watched_paths() -> None:
    paths = {
        "/home/dev8": Path("/home/dev8"),
        "/mnt/dev8-store/home": Path("/mnt/dev8-store/home"),
        "/mnt/dev8-store/workspace": Path("/mnt/dev8-store/workspace"),
    }
    assert filesystem_types(paths, MOUNTINFO) == {
        "/home/dev8": "overlay",
        "/mnt/dev8-store/home": "cifs",
        "/mnt/dev8-store/workspace": "smb3",
    }
    assert filesystem_types({"x": Path("/x")}, "") == {"x": "unknown"}


def test_a_home_on_smb_gets_one_line_that_says_what_breaks() -> None:
    line = smb_home_warning(Path("/home/dev8"), "cifs")
    assert line is not None and "\n" not in line
    for broken in ("venv", "npm", "git symlinks", "sshd", "SQLite"):
        assert broken in line
    assert smb_home_warning(Path("/home/dev8"), "ext4") is None
    assert smb_home_warning(Path("/home/dev8"), "overlay") is None


def test_this_machines_own_mount_table_names_a_type(tmp_path: Path) -> None:
    """Real: /proc/self/mountinfo of the machine running the tests."""
    assert filesystem_types({"tmp": tmp_path})["tmp"] not in ("", "unknown")


def test_the_agent_reports_an_smb_home_in_status_and_at_login(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent itself (not started: no services) over a fake mount table in which the home
    is an Azure Files share, as in the seed's layout."""
    table = tmp_path / "mountinfo"
    table.write_text(MOUNTINFO + "600 406 0:90 / /home/dev8 rw - cifs //acct/u-home rw\n")
    monkeypatch.setattr(fsinfo, "MOUNTINFO", table)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    config = AgentConfig(
        run_dir=run_dir,
        state_dir=tmp_path / "state",
        sync_root=Path("/mnt/dev8-store"),
        sync_password="s",
    )
    agent = Agent(config)
    warnings = agent.filesystem_warnings()
    assert len(warnings) == 1 and "SMB share (cifs)" in warnings[0]
    assert (run_dir / "motd").read_text() == warnings[0] + "\n"
    assert agent.status()["filesystems"] == {
        "/home/dev8": "cifs",
        "/workspace": "overlay",
        "/mnt/dev8-store/home": "cifs",
        "/mnt/dev8-store/workspace": "smb3",
    }
