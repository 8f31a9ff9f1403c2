"""Snapshots: incremental, deduplicated, checksummed copies of a workspace's volumes in a
restic repository (a local directory by default, or S3 / Azure Blob)."""

from __future__ import annotations

import builtins
import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dev8.backup import restic, unchanged
from dev8.backup.progress import TransferProgress
from dev8.backup.restic_output import SnapshotOutput, json_output
from dev8.core.errors import InvalidInput, NotFound, ProviderError
from dev8.core.naming import VOLUME_MOUNTS, VOLUME_ROLES
from dev8.core.workspace import Workspace
from dev8.paths import data_dir
from dev8.providers.base import Freezable, HelperMount, HelperResult
from dev8.service.restores import Restores
from dev8.service.volume_jobs import LineHandler, VolumeJobs, role_mounts
from dev8.service.workspaces import WorkspaceService

_NO_REPOSITORY = ("Is there a repository at the following location?", "unable to open config")


@dataclass
class Snapshot:
    id: str
    short_id: str
    time: str
    paths: list[str]
    tags: list[str] = field(default_factory=list)

    @property
    def roles(self) -> list[str]:
        mounts = {path: role for role, path in VOLUME_MOUNTS.items()}
        return [mounts.get(path, path) for path in self.paths]


@dataclass
class SnapshotResult:
    snapshot_id: str
    files_new: int
    files_changed: int
    files_unmodified: int
    data_added: int
    total_bytes: int
    removed: list[str] = field(default_factory=list)  # by the retention policy
    unchanged: bool = False  # nothing changed since snapshot_id, which stands for now


class SnapshotService:
    def __init__(
        self,
        workspaces: WorkspaceService,
        env: Mapping[str, str] | None = None,
        home: Path | None = None,
    ) -> None:
        self.workspaces = workspaces
        self.jobs = VolumeJobs(workspaces.provider, workspaces.owner, "make snapshots")
        self.restores = Restores(workspaces, self.jobs)
        self.env = dict(os.environ if env is None else env)
        self.home = home or data_dir()
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)

    @property
    def repository(self) -> restic.Repository:
        return restic.configured_repository(self.home, self.env)

    def set_repository(self, url: str) -> restic.Repository:
        repository = restic.Repository(url).validate()
        restic.save_repository(self.home, repository)
        return repository

    # Running restic ------------------------------------------------------------------------
    def _run(
        self,
        workspace: Workspace | None,
        argv: list[str],
        mounts: tuple[HelperMount, ...] = (),
        on_line: LineHandler | None = None,
        create_password: bool = False,
        writes_repository: bool = True,
    ) -> HelperResult:
        """Run ``argv`` (a restic script) in a helper with the repository (read-only unless
        ``writes_repository``), the secrets on stdin, and ``mounts``: the workspace's
        volumes read-only, or a restore's scratch directory."""
        repository = self.repository
        secret = restic.password(self.home, self.env, create=create_password)
        if secret is None:
            raise NotFound("no snapshot repository yet; `dev8 snapshot create NAME` makes one")
        if repository.remote:
            store = HelperMount(restic.CACHE_MOUNT, host_path=str(self._cache()), read_only=False)
        else:
            repository.local_path.mkdir(parents=True, exist_ok=True, mode=0o700)
            path = str(repository.local_path)
            store = HelperMount(restic.REPO_MOUNT, host_path=path, read_only=not writes_repository)
        job = self.jobs.job(
            workspace or "repository",
            "snapshot",
            argv,
            (*mounts, store),
            env={"RESTIC_PROGRESS_FPS": "4"},
            network=repository.remote,
            stdin=restic.stdin_secrets(self.env, secret),
        )
        return self.jobs.run(job, on_line)

    def _cache(self) -> Path:
        """restic's cache for a remote repository, kept between helpers."""
        path = self.home / "cache" / "restic"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _restic(self, args: list[str], workspace: Workspace | None = None, **kw) -> HelperResult:
        result = self._run(workspace, restic.restic_argv(self.repository, args), **kw)
        if result.exit_code != 0:
            raise ProviderError(f"restic {args[0]} failed: {_restic_error(result)}")
        return result

    def _ensure_repository(self) -> None:
        if self._exists():
            return
        probe = self._run(
            None, restic.restic_argv(self.repository, ["cat", "config"]), create_password=True
        )
        if probe.exit_code != 0:
            output = (probe.stderr + probe.stdout).decode(errors="replace")
            if not any(text in output for text in _NO_REPOSITORY):
                raise ProviderError(f"cannot open the snapshot repository: {_restic_error(probe)}")
            self._restic(["init"])
        self._remember_remote(self.repository)

    # Operations ----------------------------------------------------------------------------
    def create(
        self,
        name: str,
        keep_last: int | None = None,
        keep_daily: int | None = None,
        keep_weekly: int | None = None,
        progress: TransferProgress | None = None,
    ) -> SnapshotResult:
        """Snapshot all three volumes; when nothing changed since the last snapshot, that
        one stands for now (``unchanged``) and restic does not run (``backup.unchanged``)."""
        progress = progress or TransferProgress()
        workspace = self.workspaces.find(name)
        retention = restic.retention_args(keep_last, keep_daily, keep_weekly)
        with self.workspaces.operation(workspace, "snapshot"):
            self._ensure_repository()
            result = self._snapshot(workspace, progress)
            if retention:
                result.removed = self._forget(workspace, retention)
        return result

    def _snapshot(self, workspace: Workspace, progress: TransferProgress) -> SnapshotResult:
        roles = list(VOLUME_ROLES)
        last = unchanged.load(self.home, workspace.id, self.repository)
        argv = unchanged.snapshot_script(
            self.repository,
            restic.backup_args(workspace.id, workspace.name, roles),
            [VOLUME_MOUNTS[role] for role in roles],
            last,
        )
        reading = SnapshotOutput(progress)
        try:
            with self._frozen_for_remote(workspace):
                result = self._run(workspace, argv, role_mounts(workspace.id, roles), reading.line)
        finally:
            reading.finish()
        if result.exit_code == 0 and reading.unchanged and last is not None:
            progress.message(f"nothing changed since snapshot {last.snapshot_id[:8]}")
            return _unchanged_result(last)
        if result.exit_code != 0 or "snapshot_id" not in reading.summary:
            raise ProviderError(f"the snapshot failed: {_restic_error(result)}")
        made = _made_result(reading.summary)
        if reading.fingerprint:
            found = unchanged.LastSnapshot(
                self.repository.url,
                reading.summary["snapshot_id"],
                reading.fingerprint,
                made.files_new + made.files_changed + made.files_unmodified,
                made.total_bytes,
            )
            unchanged.save(self.home, workspace.id, found)
        else:
            unchanged.forget(self.home, workspace.id)
        return made

    @contextlib.contextmanager
    def _frozen_for_remote(self, workspace: Workspace) -> Iterator[None]:
        """A remote repository's credentials are in restic's environment while it reads the
        volumes. A member who swaps a directory for a link to ``/proc/self`` between restic
        listing a file and opening it would have restic archive its own environment: the
        workspace is frozen while restic reads, so nothing in it can swap anything."""
        provider = self.workspaces.provider
        if not (self.repository.remote and isinstance(provider, Freezable)):
            yield
            return
        frozen = provider.freeze(workspace.id)
        try:
            yield
        finally:
            if frozen:
                provider.thaw(workspace.id)

    def list(self, name: str) -> list[Snapshot]:
        workspace = self.workspaces.find(name)
        if not self._exists():
            return []
        result = self._restic(
            ["snapshots", "--json", "--host", restic.host_tag(workspace.id)], workspace
        )
        return [
            Snapshot(s["id"], s["short_id"], s["time"], s.get("paths", []), s.get("tags") or [])
            for s in json_output(result.stdout, [])
        ]

    def _exists(self) -> bool:
        """Cheap: a local repository has its config file; a remote one is assumed to exist
        once dev8 has its password (the first snapshot makes both)."""
        repository = self.repository
        if not repository.remote:
            return (repository.local_path / "config").is_file()
        return restic.password(self.home, self.env, create=False) is not None and (
            self._remote_seen(repository)
        )

    def _remote_seen(self, repository: restic.Repository) -> bool:
        marker = self._cache() / "initialised"
        try:
            return repository.url in marker.read_text().splitlines()
        except FileNotFoundError:
            return False

    def _remember_remote(self, repository: restic.Repository) -> None:
        if repository.remote and not self._remote_seen(repository):
            with (self._cache() / "initialised").open("a") as handle:
                handle.write(repository.url + "\n")

    def find(self, name: str, snapshot: str) -> Snapshot:
        matches = [s for s in self.list(name) if s.id.startswith(snapshot) or snapshot == "latest"]
        if snapshot == "latest" and matches:
            return max(matches, key=lambda s: s.time)
        if len(matches) != 1:
            raise NotFound(
                f"no snapshot {snapshot!r} of {name}; `dev8 snapshot ls {name}` lists them"
                if not matches
                else f"{snapshot!r} matches {len(matches)} snapshots; give more of the id"
            )
        return matches[0]

    def remove(
        self,
        name: str,
        snapshots: builtins.list[str],
        keep_last: int | None = None,
        keep_daily: int | None = None,
        keep_weekly: int | None = None,
    ) -> builtins.list[str]:
        """Remove snapshots by id, or those a retention policy does not keep."""
        workspace = self.workspaces.find(name)
        retention = restic.retention_args(keep_last, keep_daily, keep_weekly)
        if bool(snapshots) == bool(retention):
            raise InvalidInput("name snapshots to remove, or a policy (--keep-...), not both")
        ids = [self.find(name, snapshot).id for snapshot in snapshots]
        with self.workspaces.operation(workspace, "snapshot-rm"):
            if ids:
                self._restic(["forget", "--prune", *ids], workspace)
                return [i[:8] for i in ids]
            return self._forget(workspace, retention)

    def _forget(self, workspace: Workspace, retention: builtins.list[str]) -> builtins.list[str]:
        """Apply a retention policy in one helper; the short ids of what it removed (from
        restic's JSON: one group per host and paths, each with what it keeps and removes)."""
        host = restic.host_tag(workspace.id)
        args = ["forget", "--json", "--prune", "--host", host, *retention]
        groups = json_output(self._restic(args, workspace).stdout, [])
        return sorted(s["id"][:8] for group in groups for s in group.get("remove") or [])

    def check(self, read_data: bool = False) -> str:
        if not self._exists():
            raise NotFound("no snapshot repository yet; `dev8 snapshot create NAME` makes one")
        args = ["check", *(["--read-data"] if read_data else [])]
        result = self._restic(args)
        return (result.stdout.decode(errors="replace").strip().splitlines() or ["no errors"])[-1]

    def restore(
        self,
        name: str,
        snapshot: str,
        volume: str = "all",
        as_name: str | None = None,
        progress: TransferProgress | None = None,
    ) -> tuple[Workspace, builtins.list[str]]:
        """Put a snapshot's volumes back (see ``SnapshotRestore``)."""
        from dev8.service.snapshot_restores import SnapshotRestore

        return SnapshotRestore(self).run(name, snapshot, volume, as_name, progress)


def _made_result(summary: dict) -> SnapshotResult:
    return SnapshotResult(
        snapshot_id=summary["snapshot_id"],
        files_new=int(summary.get("files_new", 0)),
        files_changed=int(summary.get("files_changed", 0)),
        files_unmodified=int(summary.get("files_unmodified", 0)),
        data_added=int(summary.get("data_added", 0)),
        total_bytes=int(summary.get("total_bytes_processed", 0)),
    )


def _unchanged_result(last: unchanged.LastSnapshot) -> SnapshotResult:
    return SnapshotResult(
        snapshot_id=last.snapshot_id,
        files_new=0,
        files_changed=0,
        files_unmodified=last.files,
        data_added=0,
        total_bytes=last.total_bytes,
        unchanged=True,
    )


def _restic_error(result: HelperResult) -> str:
    lines = [
        line
        for line in (result.stderr + b"\n" + result.stdout).decode(errors="replace").splitlines()
        if line.strip() and not line.startswith(("{", "reading repository password"))
    ]
    return lines[-1] if lines else f"exit code {result.exit_code}"
