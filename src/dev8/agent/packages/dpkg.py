"""Reading dpkg's and apt's own files. Pure functions over text, plus thin file readers."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

DPKG_STATUS = Path("/var/lib/dpkg/status")
# dpkg journals each change here before it folds them into the status file; entries left
# behind mean a dpkg run was killed, and apt refuses to work until `dpkg --configure -a`.
DPKG_UPDATES = Path("/var/lib/dpkg/updates")
EXTENDED_STATES = Path("/var/lib/apt/extended_states")
ALTERNATIVES_DIR = Path("/var/lib/dpkg/alternatives")


@dataclass(frozen=True)
class Installed:
    name: str
    version: str
    arch: str
    held: bool = False
    conffiles: tuple[tuple[str, str], ...] = ()  # (path, md5 as shipped)


def _stanzas(text: str) -> list[dict[str, str]]:
    stanzas = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key] += "\n" + line.strip()
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if fields:
            stanzas.append(fields)
    return stanzas


def parse_status(text: str) -> dict[str, Installed]:
    """Installed packages (fully or half) keyed by name, from /var/lib/dpkg/status."""
    installed = {}
    for fields in _stanzas(text):
        status = fields.get("Status", "").split()
        if len(status) != 3 or status[2] not in (
            "installed",
            "half-configured",
            "unpacked",
            "triggers-awaited",
            "triggers-pending",
        ):
            continue
        conffiles = tuple(
            (parts[0], parts[1])
            for line in fields.get("Conffiles", "").splitlines()
            if len(parts := line.split()) >= 2 and "obsolete" not in parts[2:]
        )
        name = fields["Package"]
        installed[name] = Installed(
            name,
            fields.get("Version", ""),
            fields.get("Architecture", ""),
            held=status[0] == "hold",
            conffiles=conffiles,
        )
    return installed


def interrupted(status: Path = DPKG_STATUS, updates: Path = DPKG_UPDATES) -> bool:
    """Whether a dpkg run was killed half-way: a package left half-done in the status
    file, or journal entries not yet folded into it."""
    if unconfigured(status.read_text(errors="replace")):
        return True
    return updates.is_dir() and any(entry.name.isdigit() for entry in updates.iterdir())


def unconfigured(text: str) -> list[str]:
    """Packages an interrupted dpkg run left half-done."""
    return [
        fields["Package"]
        for fields in _stanzas(text)
        if fields.get("Status", "").split()[2:3]
        not in (["installed"], ["not-installed"], ["config-files"], [])
    ]


def parse_auto_installed(text: str) -> set[str]:
    """Packages apt marked as automatically installed (dependencies), from extended_states."""
    auto = set()
    for fields in _stanzas(text):
        if fields.get("Auto-Installed") == "1":
            auto.add(fields["Package"])
    return auto


def manual_packages(installed: dict[str, Installed], auto: set[str]) -> set[str]:
    """What ``apt-mark showmanual`` reports: installed and not marked automatic."""
    return {name for name in installed if name not in auto}


@dataclass(frozen=True)
class Alternative:
    name: str
    manual: bool
    value: str | None


def read_alternatives(
    directory: Path = ALTERNATIVES_DIR, links: Path = Path("/etc/alternatives")
) -> dict[str, Alternative]:
    result: dict[str, Alternative] = {}
    if not directory.is_dir():
        return result
    for path in directory.iterdir():
        try:
            mode = path.read_text().split("\n", 1)[0].strip()
            value = str((links / path.name).readlink())
        except OSError:
            continue
        result[path.name] = Alternative(path.name, mode == "manual", value)
    return result


_DEB_NAME = re.compile(r"^(?P<name>[^_]+)_(?P<version>[^_]+)_(?P<arch>[^_]+)\.deb$")


def deb_identity(filename: str) -> tuple[str, str, str] | None:
    """(package, version, arch) from a Debian archive name, e.g. ``vim_2%3a9.0_amd64.deb``."""
    match = _DEB_NAME.match(filename)
    if not match:
        return None
    return match["name"], match["version"].replace("%3a", ":"), match["arch"]


def read_os_release(path: Path = Path("/etc/os-release")) -> dict[str, str]:
    fields = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key] = value.strip().strip('"')
    return {
        "id": fields.get("ID", ""),
        "codename": fields.get("VERSION_CODENAME", ""),
        "version": fields.get("VERSION_ID", ""),
    }


@dataclass
class SystemState:
    """What is installed now, read from the files dpkg and apt keep."""

    installed: dict[str, Installed] = field(default_factory=dict)
    auto: set[str] = field(default_factory=set)

    @classmethod
    def read(cls) -> SystemState:
        status = DPKG_STATUS.read_text(errors="replace")
        extended = EXTENDED_STATES.read_text(errors="replace") if EXTENDED_STATES.exists() else ""
        return cls(parse_status(status), parse_auto_installed(extended))

    @property
    def manual(self) -> set[str]:
        return manual_packages(self.installed, self.auto)
