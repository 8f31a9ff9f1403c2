"""Recording what the user installed, after every apt/dpkg run (and before a rebuild).

Runs as a hook of the user's own apt commands: it must be quick and must never make that
command fail (the hooks ignore its exit status). While a restore is unfinished it only adds:
packages that are missing because they have not been restored yet must stay recorded.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

from dev8.agent.packages.dpkg import SystemState, deb_identity, read_alternatives, read_os_release
from dev8.agent.packages.layout import (
    APT_CONFIG_PATHS,
    BASELINE,
    OWN_PREFIX,
    Layout,
    Recorded,
    read_json,
)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def md5_file(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def apt_config_files() -> dict[str, str]:
    """sha256 of every file in the apt configuration locations (dev8's own excluded)."""
    found = {}
    for location in map(Path, APT_CONFIG_PATHS):
        paths = sorted(location.iterdir()) if location.is_dir() else [location]
        for path in paths:
            if path.is_file() and not path.name.startswith(OWN_PREFIX):
                found[str(path)] = sha256_file(path)
    return found


def restore_complete(layout: Layout) -> bool:
    report = read_json(layout.report)
    return not report or report.get("status") == "complete"


def record(
    layout: Layout = Layout(), baseline_path: Path = BASELINE, lock_timeout: float | None = 30.0
) -> Recorded:
    layout.ensure()
    with layout.locked(lock_timeout):
        baseline = read_json(baseline_path)
        previous = Recorded.load(layout.state)
        exact = restore_complete(layout)
        system = SystemState.read()
        recorded = _collect(layout, baseline, previous, system, exact)
        recorded.archive_listing = _update_index(layout, previous.archive_listing)
        if exact:
            _prune_archives(layout, system, recorded)
        recorded.save(layout.state)
        return recorded


def _collect(
    layout: Layout, baseline: dict, previous: Recorded, system: SystemState, exact: bool
) -> Recorded:
    base_manual = set(baseline.get("manual", []))
    forgotten = [name for name in previous.forgotten if name in system.installed]
    user = {
        name: system.installed[name].version
        for name in sorted(system.manual)
        if name not in base_manual and name not in forgotten
    }
    packages = user if exact else {**previous.packages, **user}
    holds = sorted(name for name, pkg in system.installed.items() if pkg.held)
    if not exact:
        holds = sorted(set(holds) | set(previous.holds))
    base_alternatives = baseline.get("alternatives", {})
    alternatives = {
        alt.name: alt.value
        for alt in read_alternatives().values()
        if alt.manual and alt.value and base_alternatives.get(alt.name) != alt.value
    }
    if not exact:
        alternatives = {**previous.alternatives, **alternatives}
    return Recorded(
        release=read_os_release(),
        packages=packages,
        holds=holds,
        alternatives=alternatives,
        files=_record_files(layout, baseline.get("files", {}), previous, exact),
        conffiles=_record_conffiles(layout, system, packages, previous, exact),
        forgotten=forgotten,
        recorded_at=time.time(),
    )


def _copy_into(root: Path, path: str) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(path, target)


def _record_files(
    layout: Layout, base_files: dict[str, str], previous: Recorded, exact: bool
) -> dict[str, str | None]:
    now = apt_config_files()
    files: dict[str, str | None] = {} if exact else dict(previous.files)
    for path, digest in now.items():
        if base_files.get(path) != digest:
            if previous.files.get(path) != digest or not (layout.files / path.lstrip("/")).exists():
                _copy_into(layout.files, path)
            files[path] = digest
    for path in base_files:
        if path not in now:
            files[path] = None  # the user deleted one of the image's files
    return files


def _record_conffiles(
    layout: Layout, system: SystemState, packages: dict[str, str], previous: Recorded, exact: bool
) -> list[str]:
    edited = set() if exact else set(previous.conffiles)
    for name in packages:
        installed = system.installed.get(name)
        for path, shipped_md5 in installed.conffiles if installed else ():
            try:
                if os.path.isfile(path) and md5_file(Path(path)) != shipped_md5:
                    _copy_into(layout.conffiles, path)
                    edited.add(path)
            except OSError:
                continue
    _record_debconf(layout, set(packages))
    return sorted(edited)


def _record_debconf(layout: Layout, owners: set[str]) -> None:
    """Debconf answers of the user's packages; password answers are never written down."""
    if not shutil.which("debconf-get-selections") or not owners:
        return
    result = subprocess.run(["debconf-get-selections"], capture_output=True, text=True)
    if result.returncode != 0:
        return
    kept = [
        line
        for line in result.stdout.splitlines()
        if not line.startswith("#")
        and len(parts := line.split("\t")) >= 3
        and parts[0] in owners
        and parts[2] != "password"
    ]
    layout.debconf.write_text("".join(f"{line}\n" for line in kept))


def _deb_files(layout: Layout) -> list[str]:
    return sorted(f"pool/{path.name}" for path in layout.pool.glob("*.deb"))


def _update_index(layout: Layout, previous_listing: list[str]) -> list[str]:
    """Rebuild the flat repository index when the set of cached .debs changed."""
    listing = _deb_files(layout)
    if listing == previous_listing and layout.index.exists():
        return listing
    result = subprocess.run(
        ["apt-ftparchive", "--db", str(layout.root / "ftparchive.db"), "packages", "pool"],
        cwd=layout.root,
        capture_output=True,
    )
    if result.returncode == 0:
        temporary = layout.index.with_name(".Packages.tmp")
        temporary.write_bytes(result.stdout)
        os.replace(temporary, layout.index)
        return listing
    return previous_listing  # try again next time


def _prune_archives(layout: Layout, system: SystemState, recorded: Recorded) -> None:
    """Drop cached .debs of versions that are neither installed nor recorded."""
    keep = {(name, pkg.version) for name, pkg in system.installed.items()}
    keep |= set(recorded.packages.items())
    for path in layout.pool.glob("*.deb"):
        identity = deb_identity(path.name)
        if identity and (identity[0], identity[1]) not in keep:
            path.unlink(missing_ok=True)


def capture_debs(paths: list[str], layout: Layout = Layout()) -> list[Path]:
    """Keep every .deb apt is about to install (apt's Pre-Install-Pkgs hook).

    Downloads land in ``archives/`` on the same volume and are hard-linked: no extra space,
    and `apt clean` cannot take them away. Files from elsewhere (``apt install ./x.deb``)
    are copied.
    """
    layout.ensure()
    captured = []
    for raw in paths:
        path = Path(raw.strip())
        target = layout.pool / path.name
        if path.suffix != ".deb" or not path.is_file() or target.exists():
            continue
        try:
            os.link(path, target)
        except OSError:
            shutil.copy2(path, target)
        captured.append(target)
    return captured


def forget(names: list[str], layout: Layout = Layout()) -> list[str]:
    """Stop recording ``names``: they will not come back after a rebuild."""
    with layout.locked():
        recorded = Recorded.load(layout.state)
        dropped = [name for name in names if name in recorded.packages]
        for name in names:
            recorded.packages.pop(name, None)
            if name not in recorded.forgotten:
                recorded.forgotten.append(name)
        recorded.save(layout.state)
    return dropped


def baseline(path: Path = BASELINE) -> dict:
    """The image's own state, recorded when the image is built."""
    system = SystemState.read()
    data = {
        "release": read_os_release(),
        "manual": sorted(system.manual),
        "installed": {name: pkg.version for name, pkg in sorted(system.installed.items())},
        "files": apt_config_files(),
        "alternatives": {alt.name: alt.value for alt in read_alternatives().values()},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    from dev8.agent.packages.layout import write_json

    write_json(path, data)
    return data
