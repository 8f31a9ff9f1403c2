"""The pure parts of enforced quotas (providers/docker/loopquota) and the image files'
bookkeeping with a stand-in for the host's tools (it records their argv; the real ones run
in tests/security/test_quota_enforced.py)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from dev8.core.errors import InvalidInput, ProviderError
from dev8.providers.docker.loopquota import (
    ENFORCED_BY,
    LABEL_ENFORCED,
    HostFacts,
    LoopVolumes,
    check_growth,
    decide,
    image_of_link,
    image_path,
    is_enforced,
    link_path,
    mkfs_argv,
    mounted_devices,
    setting_mode,
    volume_options,
)

HOST_CAN = HostFacts(is_root=True, missing_tools=(), loop_control=True, local_engine=True)
MIB = 1024**2


def test_the_setting_defaults_to_auto_and_refuses_anything_else():
    assert setting_mode({}) == "auto"
    assert setting_mode({"DEV8_QUOTA_ENFORCE": "off"}) == "off"
    assert setting_mode({"DEV8_QUOTA_ENFORCE": " Auto "}) == "auto"
    with pytest.raises(InvalidInput, match="DEV8_QUOTA_ENFORCE='xfs' is not one of"):
        setting_mode({"DEV8_QUOTA_ENFORCE": "xfs"})


@pytest.mark.parametrize(
    ("mode", "change", "reason"),
    [
        ("off", {}, "DEV8_QUOTA_ENFORCE is off"),
        ("auto", {"local_engine": False}, "not on this machine"),
        ("loop", {"is_root": False}, "need dev8 to run as root"),
        ("auto", {"loop_control": False}, "/dev/loop-control is missing"),
        ("auto", {"missing_tools": ("resize2fs",)}, "resize2fs not found"),
    ],
)
def test_warn_only_says_why(mode, change, reason):
    enforcement = decide(mode, HostFacts(**{**HOST_CAN.__dict__, **change}))
    assert not enforcement.enforced and reason in enforcement.reason
    assert enforcement.describe().startswith("warn only (") and "\n" not in enforcement.describe()


@pytest.mark.parametrize("mode", ["loop", "auto"])
def test_enforced_where_the_host_can(mode):
    assert decide(mode, HOST_CAN).enforced


def test_builders():
    assert volume_options(Path("/q/v.dev")) == {"type": "ext4", "device": "/q/v.dev"}
    assert image_of_link("/q/v.dev") == Path("/q/v.img")
    with pytest.raises(ProviderError):
        image_of_link("/dev/sda1")  # never an operator's own device
    assert is_enforced({"device": "/q/v.dev"}, {LABEL_ENFORCED: ENFORCED_BY})
    assert not is_enforced({}, {LABEL_ENFORCED: ENFORCED_BY})
    assert not is_enforced({"device": "/q/v.dev"}, {})
    argv = mkfs_argv(Path("/q/v.img"))
    assert argv[0] == "mkfs.ext4" and argv[-1] == "/q/v.img" and argv[3:5] == ["-m", "0"]
    assert any("lazy_itable_init=1" in a for a in argv)


def test_mounted_devices_from_mountinfo():
    info = (
        "36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw\n"
        "40 36 7:3 / /var/lib/docker/volumes/x/_data rw - ext4 /q/x.dev rw\n"
    )
    assert mounted_devices(info) == {"98:0", "7:3"}


def test_a_quota_grows_never_shrinks():
    check_growth("v", 64 * MIB, 64 * MIB)
    check_growth("v", 64 * MIB, 128 * MIB)
    with pytest.raises(InvalidInput, match=r"v enforces 64\.0 MiB and cannot shrink to 32\.0 MiB"):
        check_growth("v", 64 * MIB, 32 * MIB)


class Tools:
    """Stand-in for losetup, mkfs.ext4 and debugfs: records argv, attaches to loop7."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.attached: list[str] = []

    def __call__(self, argv: Sequence[str]) -> str:
        self.calls.append(list(argv))
        if argv[:3] == ["losetup", "--find", "--show"]:
            self.attached = ["/dev/loop7"]
            return "/dev/loop7\n"
        if argv[0] == "losetup" and "-j" in argv:
            return "".join(f"{d}\n" for d in self.attached)
        if argv[:2] == ["losetup", "--detach"]:
            self.attached.remove(argv[2])
        return ""


def test_create_makes_a_private_sparse_image_and_a_link_then_remove_undoes_it(tmp_path):
    tools = Tools()
    loops = LoopVolumes(tmp_path / "quota", run=tools)
    options = loops.create("vol", 64 * MIB)
    image = tmp_path / "quota" / "vol.img"
    assert options == {"type": "ext4", "device": str(tmp_path / "quota" / "vol.dev")}
    assert image.stat().st_size == 64 * MIB and image.stat().st_blocks == 0
    assert image.stat().st_mode & 0o777 == 0o600
    assert os.readlink(options["device"]) == "/dev/loop7"
    assert ["debugfs", "-w", "-R", "rmdir lost+found", str(image)] in tools.calls

    tools.attached = []  # a reboot: the device is gone, the link is stale
    assert loops.attach(image) == "/dev/loop7"
    assert os.readlink(options["device"]) == "/dev/loop7"

    loops.remove(image)
    assert not image.exists() and not Path(options["device"]).is_symlink()
    assert tools.attached == []


def test_a_failed_mkfs_leaves_nothing(tmp_path):
    def failing(argv: Sequence[str]) -> str:
        if argv[0] == "mkfs.ext4":
            raise ProviderError("mkfs.ext4 failed: no space")
        return ""

    loops = LoopVolumes(tmp_path, run=failing)
    with pytest.raises(ProviderError):
        loops.create("vol", 64 * MIB)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock"]


def test_attach_directory_attaches_every_image_before_the_engine_starts(tmp_path):
    """After a reboot, `dev8 engine ensure` attaches every image it finds (no engine
    needed): each gets a loop device and its link points at it. The host's tools are
    recorded, not run."""
    calls: list[list[str]] = []

    def run(argv):
        calls.append(list(argv))
        if argv[:2] == ["losetup", "--find"]:
            return f"/dev/loop{len(calls)}\n"
        return ""  # losetup -j: attached nowhere yet

    for name in ("dev8-a-home", "dev8-a-workspace"):
        image_path(tmp_path, name).write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not an image")
    loops = LoopVolumes(tmp_path, run=run)
    assert loops.attach_directory() == ["dev8-a-home", "dev8-a-workspace"]
    finds = [argv for argv in calls if argv[:2] == ["losetup", "--find"]]
    assert [Path(argv[-1]).name for argv in finds] == ["dev8-a-home.img", "dev8-a-workspace.img"]
    assert os.readlink(link_path(tmp_path, "dev8-a-home")).startswith("/dev/loop")
    assert LoopVolumes(tmp_path / "none", run=run).attach_directory() == []
