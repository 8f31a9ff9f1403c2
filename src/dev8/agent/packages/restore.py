"""Bringing recorded packages back in a new container, before sshd and code-server start.

Order: finish an interrupted dpkg run; put back apt sources, keys and debconf answers;
install what is missing offline from the cache through apt; fall back to the network with
the cache preferred (never downgrading what the image ships); re-apply holds, alternatives
and edited configuration files; write a machine-readable report. When the distribution
release changed, cached .debs of the old release are not used: packages are installed by
name and what cannot be found is reported.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dev8.agent.packages.dpkg import SystemState, interrupted, read_os_release
from dev8.agent.packages.layout import BASELINE, Layout, Recorded, read_json, write_json

# DEV8_RESTORING keeps the image's apt hooks from recording in the middle of a restore.
ENV = {
    **os.environ,
    "DEBIAN_FRONTEND": "noninteractive",
    "APT_LISTCHANGES_FRONTEND": "none",
    "DEV8_RESTORING": "1",
}
DPKG_OPTIONS = [
    "-o",
    "Dpkg::Options::=--force-confdef",
    "-o",
    "Dpkg::Options::=--force-confold",
    "-o",
    "Dpkg::Options::=--force-unsafe-io",
]
CACHE_SOURCE = "dev8-package-cache"


@dataclass
class Report:
    status: str = "running"  # running | complete | partial | failed
    attempt: int = 1
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    progress: str = "starting"
    release_changed: bool = False
    offline: list[str] = field(default_factory=list)
    network: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    downgraded: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def save(self, layout: Layout) -> None:
        write_json(layout.report, self.__dict__)


def _run(argv: Sequence[str], timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv),
        env=ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def _tail(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in (result.stderr + result.stdout).splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("E:")]
    return (errors or lines or ["no output"])[-1][:300]


class Restorer:
    def __init__(self, layout: Layout = Layout(), baseline_path: Path = BASELINE) -> None:
        self.layout = layout
        self.baseline = read_json(baseline_path)
        self.recorded = Recorded.load(layout.state)
        previous = read_json(layout.report)
        attempt = previous.get("attempt", 0) + 1 if previous.get("status") != "complete" else 1
        self.report = Report(attempt=attempt)
        self.work = Path(tempfile.mkdtemp(prefix="dev8-restore-"))
        self.dpkg_trouble = ""  # what finishing an interrupted dpkg run could not mend

    def step(self, message: str) -> None:
        self.report.progress = message
        self.report.save(self.layout)

    def missing(self) -> list[str]:
        installed = SystemState.read().installed
        return sorted(name for name in self.recorded.packages if name not in installed)

    def run(self) -> Report:
        self.layout.ensure()
        self.report.save(self.layout)
        try:
            self._finish_interrupted_dpkg()
            self._restore_files()
            self._restore_debconf()
            self._install(self.missing())
            self._restore_holds_and_alternatives()
            self._restore_conffiles()
            self._verify()
            if self.dpkg_trouble and self._dpkg_left_broken():
                self.report.errors.append(f"the interrupted dpkg run: {self.dpkg_trouble}")
        except (OSError, subprocess.SubprocessError) as exc:
            self.report.errors.append(str(exc)[:300])
        finally:
            shutil.rmtree(self.work, ignore_errors=True)
        self.report.missing = self.missing()
        self.report.status = (
            "complete"
            if not self.report.missing and not self.report.errors
            else "partial"
            if self.report.offline or self.report.network
            else "failed"
        )
        self.report.finished_at = time.time()
        self.report.progress = "done"
        self.report.save(self.layout)
        return self.report

    # Steps ---------------------------------------------------------------------------
    def _finish_interrupted_dpkg(self) -> None:
        if interrupted():
            self.step("finishing an interrupted package operation (dpkg --configure -a)")
            configured = _run(["dpkg", "--configure", "-a", "--force-confdef", "--force-confold"])
            fixed = _run(["apt-get", "-y", *DPKG_OPTIONS, "-f", "install", "--no-download"])
            if configured.returncode != 0 and fixed.returncode != 0:
                # A package killed while being unpacked can be neither configured nor fixed
                # from apt's own cache; the install from dev8's cache reinstalls it. Judged
                # once the restore is over (``_dpkg_left_broken``).
                self.dpkg_trouble = _tail(fixed)

    def _dpkg_left_broken(self) -> bool:
        audit = _run(["dpkg", "--audit"])
        return interrupted() or bool(audit.stdout.strip())

    def _restore_files(self) -> None:
        for path, digest in self.recorded.files.items():
            source = self.layout.files / path.lstrip("/")
            if digest is None:
                Path(path).unlink(missing_ok=True)
            elif source.is_file():
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, path)

    def _restore_debconf(self) -> None:
        if self.layout.debconf.is_file() and shutil.which("debconf-set-selections"):
            _run(["debconf-set-selections", str(self.layout.debconf)])

    def _install(self, wanted: list[str]) -> None:
        if not wanted:
            return
        release = read_os_release()
        recorded_release = self.recorded.release or release
        self.report.release_changed = (
            recorded_release.get("id"),
            recorded_release.get("codename"),
        ) != (release.get("id"), release.get("codename"))
        remaining = wanted
        if not self.report.release_changed and self.layout.index.exists():
            self.step(f"installing {len(wanted)} package(s) from the cache")
            remaining = self._install_offline(wanted)
        if remaining:
            self.step(f"installing {len(remaining)} package(s) from the network")
            self._install_online(remaining, prefer_cache=not self.report.release_changed)

    def _cache_apt_options(self) -> list[str]:
        """apt options that make the cache the only source, with lists of its own."""
        source = self.work / "cache.list"
        source.write_text(f"deb [trusted=yes] file:{self.layout.root} ./\n")
        lists = self.work / "lists"
        (lists / "partial").mkdir(parents=True, exist_ok=True)
        return [
            "-o",
            f"Dir::Etc::SourceList={source}",
            "-o",
            "Dir::Etc::SourceParts=/nonexistent",
            "-o",
            f"Dir::State::Lists={lists}",
            "-o",
            "APT::Get::List-Cleanup=false",
            "-o",
            "Acquire::Languages=none",
        ]

    def _install_offline(self, wanted: list[str]) -> list[str]:
        options = self._cache_apt_options()
        update = _run(["apt-get", *options, "update"])
        if update.returncode != 0:
            self.report.errors.append(f"reading the package cache: {_tail(update)}")
            return wanted
        installable = wanted
        if _run(["apt-get", *options, "-s", "install", *wanted]).returncode != 0:
            installable = [
                name
                for name in wanted
                if _run(["apt-get", *options, "-s", "install", name]).returncode == 0
            ]
        if installable:
            result = _run(
                ["apt-get", *options, *DPKG_OPTIONS, "-y", "--no-download", "install", *installable]
            )
            if result.returncode != 0:
                self.report.errors.append(f"offline install: {_tail(result)}")
        now = SystemState.read().installed
        self.report.offline = sorted(name for name in installable if name in now)
        return [name for name in wanted if name not in now]

    def _install_online(self, wanted: list[str], prefer_cache: bool) -> None:
        extra = []
        if prefer_cache and self.layout.index.exists():
            extra = self._add_cache_source()
        try:
            update = _run(["apt-get", "update"])
            if update.returncode != 0:  # some sources may still have answered
                self.report.errors.append(f"apt-get update: {_tail(update)}")
            available = [name for name in wanted if _has_candidate(name)]
            unknown = sorted(set(wanted) - set(available))
            if unknown:
                self.report.errors.append(f"not found in the package sources: {', '.join(unknown)}")
            if available:
                result = _run(["apt-get", *DPKG_OPTIONS, "-y", "install", *available])
                if result.returncode != 0:
                    self.report.errors.append(f"network install: {_tail(result)}")
            now = SystemState.read().installed
            self.report.network = sorted(name for name in available if name in now)
        finally:
            for path in extra:
                path.unlink(missing_ok=True)

    def _add_cache_source(self) -> list[Path]:
        """The cache as an extra source preferred over the network (priority 600 < 1000, so
        apt never downgrades a package the image ships to match it)."""
        source = Path(f"/etc/apt/sources.list.d/{CACHE_SOURCE}.list")
        preferences = Path(f"/etc/apt/preferences.d/{CACHE_SOURCE}")
        source.write_text(f"deb [trusted=yes] file:{self.layout.root} ./\n")
        preferences.write_text('Package: *\nPin: origin ""\nPin-Priority: 600\n')
        return [source, preferences]

    def _restore_holds_and_alternatives(self) -> None:
        installed = SystemState.read().installed
        holds = [name for name in self.recorded.holds if name in installed]
        if holds:
            _run(["apt-mark", "hold", *holds])
        for name, value in self.recorded.alternatives.items():
            if Path(value).exists():
                _run(["update-alternatives", "--set", name, value])

    def _restore_conffiles(self) -> None:
        for path in self.recorded.conffiles:
            source = self.layout.conffiles / path.lstrip("/")
            if source.is_file():
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, path)

    def _verify(self) -> None:
        """Nothing the image ships may have been downgraded."""
        shipped = self.baseline.get("installed", {})
        now = SystemState.read().installed
        for name, version in shipped.items():
            current = now.get(name)
            if (
                current
                and current.version != version
                and _run(["dpkg", "--compare-versions", current.version, "lt", version]).returncode
                == 0
            ):
                self.report.downgraded.append(f"{name} {version} -> {current.version}")


def _has_candidate(name: str) -> bool:
    policy = _run(["apt-cache", "policy", name]).stdout
    return "Candidate:" in policy and "Candidate: (none)" not in policy


def restore(layout: Layout = Layout()) -> Report:
    with layout.locked():
        return Restorer(layout).run()


def needs_restore(layout: Layout = Layout()) -> bool:
    """Cheap check at every start: is anything recorded missing from this container?"""
    recorded = Recorded.load(layout.state)
    if read_json(layout.report).get("status", "complete") != "complete":
        return True
    if interrupted():
        return True
    system = SystemState.read()
    if any(name not in system.installed for name in recorded.packages):
        return True
    if any(name in system.installed and not system.installed[name].held for name in recorded.holds):
        return True
    for path, digest in recorded.files.items():
        exists = Path(path).is_file()
        if (digest is None) == exists:
            return True
    return False
