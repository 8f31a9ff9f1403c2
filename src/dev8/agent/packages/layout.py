"""Where package records live, and the recorded state's file format."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pwd
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BASELINE = Path("/etc/dev8/packages/baseline.json")
# apt configuration the user may add to, recorded when it differs from the image's.
APT_CONFIG_PATHS = (
    "/etc/apt/sources.list",
    "/etc/apt/sources.list.d",
    "/etc/apt/trusted.gpg",
    "/etc/apt/trusted.gpg.d",
    "/etc/apt/keyrings",
    "/usr/share/keyrings",
    "/etc/apt/preferences",
    "/etc/apt/preferences.d",
    "/etc/apt/auth.conf",
    "/etc/apt/auth.conf.d",
)
OWN_PREFIX = "dev8-"  # files dev8 itself places in those directories (never recorded)


@dataclass(frozen=True)
class Layout:
    root: Path = Path("/var/lib/dev8/packages")

    @property
    def archives(self) -> Path:  # apt's Dir::Cache::Archives (`apt clean` empties it)
        return self.root / "archives"

    @property
    def pool(self) -> Path:  # every .deb apt installed: hard links into archives/, or copies
        return self.root / "pool"

    @property
    def files(self) -> Path:  # recorded apt configuration, mirrored by absolute path
        return self.root / "files"

    @property
    def conffiles(self) -> Path:  # package configuration files the user edited
        return self.root / "conffiles"

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def debconf(self) -> Path:
        return self.root / "debconf.txt"

    @property
    def report(self) -> Path:
        return self.root / "restore-report.json"

    @property
    def index(self) -> Path:  # a flat apt repository over pool/
        return self.root / "Packages"

    def ensure(self) -> None:
        """Create the layout. Like /var/cache/apt/archives, the download directory is open to
        apt's unprivileged downloader (_apt); the records themselves are root's alone."""
        for path in (self.archives / "partial", self.pool, self.files, self.conffiles):
            path.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o711)
        self.archives.chmod(0o755)
        for private in (self.files, self.conffiles):
            private.chmod(0o700)
        with contextlib.suppress(KeyError, OSError):
            os.chown(self.archives / "partial", pwd.getpwnam("_apt").pw_uid, 0)

    @contextlib.contextmanager
    def locked(self, timeout: float | None = None) -> Iterator[None]:
        """Exclusive access to the records; ``TimeoutError`` after ``timeout`` seconds."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as handle:
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if deadline is not None and time.monotonic() > deadline:
                        raise TimeoutError("package records are locked") from None
                    time.sleep(0.1)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass
class Recorded:
    """The recorded state: what to bring back after a rebuild."""

    release: dict[str, str] = field(default_factory=dict)
    packages: dict[str, str] = field(default_factory=dict)  # name -> version
    holds: list[str] = field(default_factory=list)
    alternatives: dict[str, str] = field(default_factory=dict)  # name -> chosen path
    files: dict[str, str | None] = field(default_factory=dict)  # path -> sha256, None: deleted
    conffiles: list[str] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)
    archive_listing: list[str] = field(default_factory=list)  # .debs the index was built from
    recorded_at: float = 0.0

    @classmethod
    def load(cls, path: Path) -> Recorded:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return cls()
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def save(self, path: Path) -> None:
        write_json(path, asdict(self))


def write_json(path: Path, data: Any) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(temporary, path)


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
