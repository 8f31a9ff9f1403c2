"""The home and /workspace on the container's own disk, synced to shares with restic (ACI).

An Azure Files share is SMB: no chmod or chown, no symbolic or hard links, no byte-range
locks. A home directly on one breaks venvs, npm's links, git symlinks, sshd and SQLite. So on
ACI the home and /workspace live on the container group's disk (POSIX), and each is kept as
a restic repository on its share (plain files, which SMB handles), ``$DEV8_SYNC_ROOT/<name>``:

- at start, before anything reads the home, each repository is created if absent and its
  latest snapshot restored (owners, modes, symlinks and hard links as snapshotted);
- every ``DEV8_SYNC_INTERVAL_S`` each tree is backed up, one at a time, under ``nice`` and
  ``ionice -c 2 -n 7`` and within ``SYNC_LIMIT_S``; every ``PRUNE_EVERY`` syncs the older
  snapshots are forgotten (``--keep-last KEEP_LAST``) and pruned;
- at a stop, once the services are down, a final sync within ``DEV8_SYNC_FINAL_S``.

The restore marker: a tree is backed up only after this container restored it completely
(or found nothing to restore), which a file outside the synced trees, on the container's
own disk (``MARKER_DIR``), records. A restore is fetched into ``<tree>/.dev8-sync-restore`` and
only then swapped in, entry by entry (renames on one filesystem, so a tree that is a mount
point works too); the marker is written after the swap. A restore cut short leaves no
marker: nothing is synced over the good snapshot, and the next start in the same container
fetches it again; a new container starts from an empty disk anyway.

One writer per repository: only one container group of a workspace runs at a time, so the
agent removes any lock a killed predecessor left (``unlock --remove-all``) before its first
sync. restic gets the password in its own environment only.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dev8.agent.config import AgentConfig
from dev8.agent.sync_restic import Outcome, Restic, Runner, backup_summary, latest_snapshot

log = logging.getLogger("dev8.agent")
HOST = "dev8-sync"  # restic's --host: constant, so each sync finds its parent snapshot
TAG = "dev8-sync"
# In each tree: where a restore is fetched before the swap (not volume_swap's .dev8-restore).
STAGING = ".dev8-sync-restore"
MARKER_DIR = Path("/var/lib/dev8-sync")  # the container's own disk, never synced
SYNC_LIMIT_S = 1800.0  # one periodic backup at most
RESTORE_LIMIT_S = 3600.0
KEEP_LAST = 24
PRUNE_EVERY = 12  # syncs between two prunes (an hour at the default interval)


@dataclass
class TreeStatus:
    path: str
    repository: str
    restored: dict | None = None  # {"snapshot": id or None, "at": time} once complete
    restore_error: str | None = None
    last_sync: dict | None = None  # {"snapshot", "finished_at", "duration_s"}
    last_error: str | None = None
    last_attempt_at: float | None = None
    syncing: bool = False
    syncs: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class Markers:
    """Which trees this container restored completely, on its own disk."""

    def __init__(self, directory: Path = MARKER_DIR) -> None:
        self.directory = directory

    def read(self, name: str) -> dict | None:
        try:
            value = json.loads((self.directory / f"{name}.restored").read_text())
        except (OSError, ValueError):
            return None
        return value if isinstance(value, dict) else None

    def write(self, name: str, snapshot: str | None) -> dict:
        value = {"snapshot": snapshot, "at": time.time()}
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = self.directory / f".{name}.tmp"
        with open(temporary, "w") as handle:
            json.dump(value, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.directory / f"{name}.restored")
        return value


@dataclass(frozen=True)
class Settings:
    root: Path
    trees: dict[str, Path]  # name (the share under root) -> the tree on the container's disk
    interval: float = 300.0
    final_limit: float = 20.0
    keep_last: int = KEEP_LAST
    prune_every: int = PRUNE_EVERY

    def repository(self, name: str) -> Path:
        return self.root / name / "restic"


def settings_of(config: AgentConfig) -> Settings | None:
    if config.sync_root is None:
        return None
    return Settings(
        root=config.sync_root,
        trees=config.volumes,
        interval=config.sync_interval,
        final_limit=config.sync_final_limit,
    )


def prune_due(syncs: int, every: int) -> bool:
    """After every ``every``-th completed sync of a tree."""
    return syncs > 0 and syncs % every == 0


def swap_in(restored: Path, tree: Path, staging: Path) -> None:
    """Replace ``tree``'s entries with ``restored``'s (both on one filesystem, ``staging``
    inside ``tree``), then its owner, mode and times."""
    old = staging / ".old"
    old.mkdir()
    for entry in os.listdir(tree):
        if entry != STAGING:
            os.rename(tree / entry, old / entry)
    for entry in os.listdir(restored):
        os.rename(restored / entry, tree / entry)
    info = restored.lstat()
    os.chown(tree, info.st_uid, info.st_gid)
    os.chmod(tree, info.st_mode & 0o7777)
    os.utime(tree, ns=(info.st_atime_ns, info.st_mtime_ns))


class Sync:
    def __init__(
        self,
        settings: Settings,
        runner: Runner,
        markers: Markers | None = None,
        on_problem: Callable[[str | None], None] = lambda _text: None,
    ) -> None:
        self.settings = settings
        self.runner = runner
        self.markers = markers or Markers()
        self.on_problem = on_problem  # a line for the login message, None when all is well
        self.trees = {
            name: TreeStatus(str(path), str(settings.repository(name)))
            for name, path in settings.trees.items()
        }
        self.restoring: str | None = None
        self._lock = threading.Lock()  # one restic at a time
        self._stopping = threading.Event()
        self._unlocked: set[str] = set()

    # -- start ---------------------------------------------------------------------------
    def restore_all(self) -> list[str]:
        """Bring every tree back from its share; the warnings for the ones that failed."""
        warnings = []
        for name in self.settings.trees:
            self.restoring = f"restoring {self.trees[name].path} from its share"
            try:
                self._restore(name)
            except OSError as exc:
                self.trees[name].restore_error = f"cannot swap the restored files in: {exc}"
            error = self.trees[name].restore_error
            if error:
                warnings.append(
                    f"{self.trees[name].path} was not restored from its share ({error}); "
                    "it is not synced, and what is written there is lost at the next stop"
                )
        self.restoring = None
        self._report()
        return warnings

    def _restore(self, name: str) -> None:
        tree, status = self.settings.trees[name], self.trees[name]
        staging = tree / STAGING
        marker = self.markers.read(name)
        if marker is not None:  # restored earlier in this container: the disk is newer
            status.restored = marker
            shutil.rmtree(staging, ignore_errors=True)
            return
        repository = self.settings.repository(name)
        if not self._ensure_repository(name, repository):
            return
        found = self._run(repository, ["snapshots", "--json", "--no-lock", "--host", HOST])
        if not found.ok:
            status.restore_error = found.error
            return
        snapshot = latest_snapshot(found.stdout)
        if snapshot is not None:
            shutil.rmtree(staging, ignore_errors=True)  # a fetch cut short earlier
            tree.mkdir(parents=True, exist_ok=True)
            staging.mkdir(mode=0o700)
            fetched = self._run(
                repository,
                ["restore", snapshot, "--no-lock", "--target", str(staging)],
                limit=RESTORE_LIMIT_S,
            )
            if not fetched.ok:
                status.restore_error = fetched.error
                shutil.rmtree(staging, ignore_errors=True)
                return
            swap_in(staging / tree.relative_to("/"), tree, staging)
        status.restored = self.markers.write(name, snapshot)
        shutil.rmtree(staging, ignore_errors=True)
        log.info("%s restored from snapshot %s", tree, snapshot or "(none yet: a new tree)")

    def _ensure_repository(self, name: str, repository: Path) -> bool:
        if not (repository / "config").exists():
            try:
                repository.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                self.trees[name].restore_error = f"cannot create {repository}: {exc}"
                return False
            created = self._run(repository, ["init"])
            if not created.ok:
                self.trees[name].restore_error = created.error
                return False
        return True

    # -- syncs ---------------------------------------------------------------------------
    def start(self, stop: threading.Event) -> None:
        threading.Thread(target=self.run, args=(stop,), name="sync", daemon=True).start()

    def run(self, stop: threading.Event) -> None:
        """Sync every interval until ``stop``; the interval counts from a pass's end."""
        while not stop.wait(self.settings.interval):
            self.sync_all(final=False)

    def sync_all(self, *, final: bool) -> None:
        deadline = time.monotonic() + self.settings.final_limit
        for name in self.settings.trees:
            if self._stopping.is_set() and not final:
                return
            limit = deadline - time.monotonic() if final else SYNC_LIMIT_S
            if limit <= 0:
                self.trees[name].last_error = "no time left for the final sync"
                continue
            self.sync(name, limit=limit, low_priority=not final)
        self._report()

    def sync_now(self) -> dict:
        """Each tree synced at full priority, after any sync already running (for a stop
        that waits for it: ``POST /sync``); the status afterwards."""
        for name in self.settings.trees:
            self.sync(name, limit=SYNC_LIMIT_S, low_priority=False)
        self._report()
        return self.snapshot()

    def final(self) -> None:
        """The last sync at a stop: the periodic one in flight is interrupted (it would
        run at low priority), then each tree once more, within the final limit."""
        self._stopping.set()
        self.runner.interrupt()
        started = time.monotonic()
        self.sync_all(final=True)
        log.info("final sync done in %.1f s", time.monotonic() - started)

    def sync(self, name: str, *, limit: float, low_priority: bool) -> None:
        status = self.trees[name]
        if status.restored is None:
            status.last_error = "not synced: the tree was not restored from its share"
            return
        if not self._lock.acquire(timeout=limit):
            status.last_error = f"not synced: another sync held the repository for {limit:g} s"
            return
        try:
            status.syncing, status.last_attempt_at = True, time.time()
            self._sync_locked(name, self.settings.repository(name), limit, low_priority)
        finally:
            status.syncing = False
            self._lock.release()

    def _sync_locked(self, name: str, repository: Path, limit: float, low: bool) -> None:
        status = self.trees[name]
        if name not in self._unlocked:
            self._run(repository, ["unlock", "--remove-all"], limit=limit)
            self._unlocked.add(name)
        tree = self.settings.trees[name]
        backup = [
            "backup", "--json", "--quiet", "--host", HOST, "--tag", TAG,
            "--exclude", str(tree / STAGING), str(tree),
        ]  # fmt: skip
        started = time.monotonic()
        done = self._run(repository, backup, limit=limit, low_priority=low)
        duration = round(time.monotonic() - started, 2)
        if not done.ok:
            status.last_error = done.error
            log.warning("sync of %s failed: %s", tree, done.error)
            return
        summary = backup_summary(done.stdout)
        status.syncs += 1
        status.last_error = None
        status.last_sync = {
            "snapshot": summary.get("snapshot_id"),
            "finished_at": time.time(),
            "duration_s": duration,
        }
        if not self._stopping.is_set() and prune_due(status.syncs, self.settings.prune_every):
            keep = ["--keep-last", str(self.settings.keep_last)]
            pruned = self._run(
                repository, ["forget", "--host", HOST, *keep, "--prune"], low_priority=True
            )
            if not pruned.ok:
                log.warning("pruning %s failed: %s", repository, pruned.error)

    def _run(
        self,
        repository: Path,
        args: list[str],
        limit: float = SYNC_LIMIT_S,
        low_priority: bool = False,
    ) -> Outcome:
        return self.runner(repository, args, limit=limit, low_priority=low_priority)

    # -- reporting -----------------------------------------------------------------------
    def _report(self) -> None:
        problems = [
            f"{status.path}: {status.restore_error or status.last_error}"
            for status in self.trees.values()
            if status.restore_error or status.last_error
        ]
        text = "".join(f"dev8 sync: {line}\n" for line in problems)
        self.on_problem(text or None)

    def snapshot(self) -> dict:
        durations = [
            status.last_sync.get("duration_s") or 0.0
            for status in self.trees.values()
            if status.last_sync
        ]
        return {
            "root": str(self.settings.root),
            "interval_s": self.settings.interval,
            "final_limit_s": self.settings.final_limit,
            # What a crash can lose: the interval plus one pass of syncs.
            "loss_window_s": round(self.settings.interval + sum(durations), 1),
            "restoring": self.restoring,
            "trees": {name: status.as_dict() for name, status in self.trees.items()},
        }


def start_sync(config: AgentConfig, on_problem: Callable[[str | None], None]) -> Sync | None:
    """The sync of this workspace's trees, when ``DEV8_SYNC_ROOT`` asks for one."""
    settings = settings_of(config)
    if settings is None:
        return None
    return Sync(settings, Restic(config.sync_password), on_problem=on_problem)
