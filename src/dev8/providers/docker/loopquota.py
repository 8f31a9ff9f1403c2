"""Quotas the local engine enforces: each volume an ext4 file system in a sparse image file.

Docker's local volume driver has no size option, but it mounts a block device
(``type=ext4``, ``device=...``); a loop device on a sparse image file is one of the quota's
size that costs only the blocks written. A loop device's number changes after a reboot, so
the volume's ``device`` is a symbolic link dev8 keeps next to the image (mount(2) follows
it) and points again at a loop device before anything mounts the volume.

Enforced by default (``DEV8_QUOTA_ENFORCE=auto``); where the host cannot do it (not root, no
loop devices, no e2fsprogs, a remote engine), or with ``DEV8_QUOTA_ENFORCE=off``, quotas stay
measured and warned about.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dev8.core.errors import InvalidInput, ProviderError
from dev8.core.quotas import ENFORCEMENT_NOTE, format_bytes
from dev8.paths import data_dir

SETTING = "DEV8_QUOTA_ENFORCE"
MODES = ("off", "loop", "auto")
DEFAULT_MODE = "auto"
TOOLS = ("losetup", "mkfs.ext4", "e2fsck", "resize2fs", "debugfs")
LOOP_CONTROL = Path("/dev/loop-control")
IMAGE_SUFFIX, LINK_SUFFIX = ".img", ".dev"
FILESYSTEM = "ext4"
COMMAND_TIMEOUT_S = 600.0  # an fsck of a big, full volume before it grows
# Labels on an enforced volume: which mechanism, so that a later process (another DEV8_HOME,
# the setting turned off) still re-attaches and removes it.
LABEL_ENFORCED = "dev8.quota"
ENFORCED_BY = "loop-ext4"


@dataclass(frozen=True)
class Enforcement:
    """Whether new volumes get an enforced size, and why not when they do not."""

    enforced: bool
    reason: str = ""

    def describe(self) -> str:
        if self.enforced:
            return "enforced (loop ext4): a volume refuses writes beyond its quota"
        return f"warn only ({self.reason}): {ENFORCEMENT_NOTE}"


@dataclass(frozen=True)
class HostFacts:
    """What the probe looks at, gathered apart so that the decision is a pure function."""

    is_root: bool
    missing_tools: tuple[str, ...]
    loop_control: bool
    local_engine: bool


def host_facts(local_engine: bool) -> HostFacts:
    return HostFacts(
        is_root=os.geteuid() == 0,
        missing_tools=tuple(tool for tool in TOOLS if shutil.which(tool) is None),
        loop_control=LOOP_CONTROL.exists(),
        local_engine=local_engine,
    )


def setting_mode(env: Mapping[str, str]) -> str:
    mode = (env.get(SETTING) or DEFAULT_MODE).strip().lower()
    if mode not in MODES:
        raise InvalidInput(f"{SETTING}={mode[:20]!r} is not one of {', '.join(MODES)}")
    return mode


def decide(mode: str, facts: HostFacts) -> Enforcement:
    """Enforce when asked (loop, auto) and the host can; else warn-only with the reason."""
    if mode == "off":
        return Enforcement(False, f"{SETTING} is off (unset it, or set auto, to enforce)")
    if not facts.local_engine:
        return Enforcement(False, "the Docker engine is not on this machine")
    if not facts.is_root:
        return Enforcement(False, "loop devices need dev8 to run as root")
    if not facts.loop_control:
        return Enforcement(False, f"{LOOP_CONTROL} is missing (no loop devices here)")
    if facts.missing_tools:
        return Enforcement(
            False, f"{', '.join(facts.missing_tools)} not found (install e2fsprogs, util-linux)"
        )
    return Enforcement(True)


def quota_directory() -> Path:
    """Where this dev8's enforced volumes keep their images."""
    return data_dir() / "quota"


# Pure builders ---------------------------------------------------------------------------
def image_path(directory: Path, volume: str) -> Path:
    return directory / f"{volume}{IMAGE_SUFFIX}"


def link_path(directory: Path, volume: str) -> Path:
    return directory / f"{volume}{LINK_SUFFIX}"


def image_of_link(device_option: str) -> Path:
    """The image behind a volume's ``device`` option (the link beside it)."""
    link = Path(device_option)
    if link.suffix != LINK_SUFFIX:
        raise ProviderError(f"{device_option} is not a dev8 quota device link")
    return link.with_suffix(IMAGE_SUFFIX)


def volume_options(link: Path) -> dict[str, str]:
    """The local driver's options that mount the image's file system through ``link``."""
    return {"type": FILESYSTEM, "device": str(link)}


def is_enforced(options: Mapping[str, str], volume_labels: Mapping[str, str]) -> bool:
    return volume_labels.get(LABEL_ENFORCED) == ENFORCED_BY and "device" in options


def mkfs_argv(image: Path) -> list[str]:
    # No reserved blocks (the whole quota is the member's), 4 KiB blocks and the default
    # inode ratio at any size, and tables written lazily so a 100 GiB image stays sparse.
    return [
        "mkfs.ext4",
        "-q",
        "-F",
        "-m",
        "0",
        "-T",
        "default",
        "-E",
        "lazy_itable_init=1,lazy_journal_init=1,root_owner=0:0",
        str(image),
    ]


def mounted_devices(mountinfo: str) -> set[str]:
    """The ``major:minor`` of every mounted device, from /proc/self/mountinfo."""
    found = set()
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 2:
            found.add(fields[2])
    return found


def check_growth(volume: str, current: int, wanted: int) -> None:
    """A file system's quota can grow, never shrink (ext4 shrinks only offline, slowly,
    and never below what it holds)."""
    if wanted < current:
        raise InvalidInput(
            f"volume {volume} enforces {format_bytes(current)} and cannot shrink to "
            f"{format_bytes(wanted)}; back it up and restore it into a new workspace instead"
        )


# The host's side -------------------------------------------------------------------------
Run = Callable[[Sequence[str]], str]


def run_tool(argv: Sequence[str]) -> str:
    """Run a host tool; its stdout, or a ProviderError naming it with its last error line.
    e2fsck's exit code 1 means it repaired something, which is success."""
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ProviderError(f"{argv[0]} failed: {exc}") from exc
    allowed = (0, 1) if argv[0] == "e2fsck" else (0,)
    if done.returncode not in allowed:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise ProviderError(f"{argv[0]} failed: {lines[-1] if lines else done.returncode}")
    return done.stdout


class LoopVolumes:
    """Image files, loop devices and links of enforced volumes under ``directory``."""

    def __init__(self, directory: Path, run: Run = run_tool) -> None:
        self.directory = directory
        self.run = run

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # One process at a time attaches: two loop devices on one image, both mounted,
        # would corrupt it.
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with (self.directory / ".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def create(self, volume: str, size: int) -> dict[str, str]:
        """A new sparse image of ``size`` bytes with an empty ext4 on it, attached; the
        local driver's options for it."""
        image = image_path(self.directory, volume)
        with self._locked():
            self._detach(image)
            image.unlink(missing_ok=True)
            # The member's data: root's alone, as the engine's own volumes are.
            os.close(os.open(image, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            os.truncate(image, size)
            try:
                self.run(mkfs_argv(image))
                # An empty root: the engine copies the image's files into an empty volume
                # only, and lost+found would make it non-empty.
                self.run(["debugfs", "-w", "-R", "rmdir lost+found", str(image)])
                self._attach(volume)
            except BaseException:
                self._forget(volume)
                raise
        return volume_options(link_path(self.directory, volume))

    def adopt(self, volume: str) -> dict[str, str] | None:
        """The local driver's options for an image already here (a move onto a bounded
        volume was interrupted after the old one went: the image holds the data), attached;
        None when there is none."""
        if not image_path(self.directory, volume).is_file():
            return None
        with self._locked():
            self._attach(volume)
        return volume_options(link_path(self.directory, volume))

    def attach(self, image: Path) -> str:
        """Make sure ``image`` is on a loop device and its link points at it; the device."""
        with self._locked():
            return self._attach(image.name.removesuffix(IMAGE_SUFFIX), image.parent)

    def attach_directory(self) -> list[str]:
        """Attach every image under the directory (before the engine starts, when it will
        mount them); the volumes' names. Needs no engine."""
        if not self.directory.is_dir():
            return []
        with self._locked():
            names = sorted(p.name.removesuffix(IMAGE_SUFFIX) for p in self._images())
            for name in names:
                self._attach(name)
        return names

    def _images(self) -> Iterator[Path]:
        return (p for p in self.directory.glob(f"*{IMAGE_SUFFIX}") if p.is_file())

    def _attach(self, volume: str, directory: Path | None = None) -> str:
        where = directory or self.directory
        image = image_path(where, volume)
        if not image.is_file():
            raise ProviderError(f"the quota image {image} of volume {volume} is missing")
        devices = self._devices(image)
        device = devices[0] if devices else self.run(["losetup", "--find", "--show", str(image)])
        device = device.strip()
        link = link_path(where, volume)
        if not (link.is_symlink() and os.readlink(link) == device):
            temporary = link.with_name(link.name + ".new")
            temporary.unlink(missing_ok=True)
            temporary.symlink_to(device)
            temporary.replace(link)
        return device

    def _devices(self, image: Path) -> list[str]:
        """The loop devices ``image`` is attached to (``losetup -j``: "/dev/loop3: ...")."""
        out = self.run(["losetup", "--noheadings", "--output", "NAME", "-j", str(image)])
        return [line.strip() for line in out.splitlines() if line.strip()]

    def grow(self, image: Path, size: int) -> None:
        """Grow ``image`` and its file system to ``size`` bytes (never shrinks)."""
        with self._locked():
            current = image.stat().st_size
            if size <= current:
                return
            device = self._attach(image.name.removesuffix(IMAGE_SUFFIX), image.parent)
            os.truncate(image, size)
            self.run(["losetup", "--set-capacity", device])
            if not self._mounted(device):
                # resize2fs insists on a checked file system when it is not mounted.
                self.run(["e2fsck", "-f", "-p", device])
            self.run(["resize2fs", device])

    @staticmethod
    def _mounted(device: str) -> bool:
        rdev = os.stat(device).st_rdev
        number = f"{os.major(rdev)}:{os.minor(rdev)}"
        return number in mounted_devices(Path("/proc/self/mountinfo").read_text())

    def size(self, image: Path) -> int:
        return image.stat().st_size

    def remove(self, image: Path) -> None:
        """Detach and delete ``image`` and its link; missing: no-op."""
        with self._locked():
            self._detach(image)
            image.unlink(missing_ok=True)
            image.with_suffix(LINK_SUFFIX).unlink(missing_ok=True)

    def _detach(self, image: Path) -> None:
        if image.exists():
            for device in self._devices(image):
                self.run(["losetup", "--detach", device])

    def _forget(self, volume: str) -> None:
        image = image_path(self.directory, volume)
        try:
            self._detach(image)
        finally:
            image.unlink(missing_ok=True)
            link_path(self.directory, volume).unlink(missing_ok=True)
