"""A snapshot put back into a workspace, with the same staging and swap as a restore from an
archive: the previous data stays in place until every volume was restored.

restic never sees a workspace's volume: it fetches the snapshot into a scratch directory of
dev8's first (the workspace still runs), with the repository read-only; each fetched tree is
measured against the quota and the free space; then, with the workspace stopped, a helper
without the repository, its secrets or a network copies each volume's tree into its staging
area (docs/security.md, "Snapshot restores").
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from dev8.backup import restic, scripts
from dev8.backup.plan import roles_for
from dev8.backup.progress import TransferProgress
from dev8.backup.restic_output import json_output
from dev8.core.errors import NotFound, ProviderError
from dev8.core.naming import VOLUME_MOUNTS, volume_name
from dev8.core.workspace import Workspace
from dev8.providers.base import HelperMount
from dev8.service.restores import STAGING, RestoreSize, check_quotas

if TYPE_CHECKING:
    from dev8.service.snapshots import Snapshot, SnapshotService


class SnapshotRestore:
    def __init__(self, snapshots: SnapshotService) -> None:
        self.snapshots = snapshots

    def run(
        self,
        name: str,
        snapshot: str,
        volume: str = "all",
        as_name: str | None = None,
        progress: TransferProgress | None = None,
    ) -> tuple[Workspace, list[str]]:
        """Put a snapshot's volumes back; the workspace and the roles restored."""
        progress = progress or TransferProgress()
        found = self.snapshots.find(name, snapshot)
        roles = [role for role in roles_for(volume) if VOLUME_MOUNTS[role] in found.paths]
        if not roles:
            raise NotFound(f"snapshot {found.short_id} holds no {volume} volume")
        source = self.snapshots.workspaces.find(name)
        target = self.snapshots.restores.live_target(name, as_name)
        self.snapshots.jobs.check_ready(host_paths=True)
        with self._fetched(source, found, roles, progress) as scratch:
            sizes = self._measure(source, scratch, roles)
            like = target.workspace if target else source
            check_quotas(like.quotas, sizes, as_name or name)
            if target is None:
                target = self.snapshots.restores.new_target(as_name or name, source, progress)
            workspace = target.workspace

            def stage(role: str, token: str) -> None:
                self._place(workspace, scratch, role, token, progress)

            self.snapshots.restores.run(target, "snapshot-restore", roles, stage, progress, sizes)
        return target.workspace, roles

    def _measure(
        self, source: Workspace, scratch: Path, roles: list[str]
    ) -> dict[str, RestoreSize]:
        """Each fetched volume's size, checked against the quota and the free space before
        anything is created, stopped or staged (as an archive's scan is)."""
        paths = {role: f"{scripts.FETCHED}{VOLUME_MOUNTS[role]}" for role in roles}
        job = self.snapshots.jobs.job(
            source,
            "measure",
            scripts.measure_argv(list(paths.values())),
            [HelperMount(scripts.SCRATCH, host_path=str(scratch))],
        )
        found = json_output(
            self.snapshots.jobs.run_checked(job, "measuring the snapshot failed").stdout, {}
        )
        try:
            return {
                role: RestoreSize(int(found[path]["bytes"]), int(found[path]["entries"]))
                for role, path in paths.items()
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise ProviderError(f"measuring the snapshot answered {found!r:.200}") from exc

    @contextlib.contextmanager
    def _fetched(
        self,
        source: Workspace,
        snapshot: Snapshot,
        roles: list[str],
        progress: TransferProgress,
    ) -> Iterator[Path]:
        """A scratch directory of dev8's holding ``roles`` of ``snapshot``, deleted after."""
        self._clear_scratch(stale_only=True)
        scratch = self._scratch_home() / f"{os.getpid()}-{secrets.token_hex(6)}"
        scratch.mkdir(mode=0o700)
        try:
            progress.start(f"fetching snapshot {snapshot.short_id}", None)
            try:
                self.snapshots._restic(
                    restic.fetch_args(snapshot.id, roles),
                    source,
                    mounts=(HelperMount(scripts.SCRATCH, host_path=str(scratch), read_only=False),),
                    writes_repository=False,
                )
            finally:
                progress.finish()
            yield scratch
        finally:
            self._clear_scratch(names=[scratch.name])

    def _place(
        self, workspace: Workspace, scratch: Path, role: str, token: str, progress: TransferProgress
    ) -> None:
        """Copy the fetched tree of ``role`` into the (stopped) workspace's staging area."""
        progress.start(f"restoring {role:<9}", None)
        job = self.snapshots.jobs.job(
            workspace,
            "restore",
            scripts.place_argv(f"{scripts.FETCHED}{VOLUME_MOUNTS[role]}", token),
            [
                HelperMount(STAGING, volume=volume_name(workspace.id, role), read_only=False),
                HelperMount(scripts.SCRATCH, host_path=str(scratch)),
            ],
            env={"DEV8_SWAP_PY": scripts.swap_program()},
        )
        try:
            self.snapshots.jobs.run_checked(job, f"restoring the {role} volume failed")
        finally:
            progress.finish()

    def _scratch_home(self) -> Path:
        path = self.snapshots.home / "restores"
        path.mkdir(mode=0o700, exist_ok=True)
        return path

    def _clear_scratch(self, names: list[str] | None = None, stale_only: bool = False) -> None:
        """Delete scratch directories: ``names``, or (``stale_only``) those of dev8
        processes that are gone (a killed restore leaves its own)."""
        home = self._scratch_home()
        if stale_only:
            names = [entry.name for entry in home.iterdir() if _stale(entry.name)]
        if not names:
            return
        mount = HelperMount(scripts.SCRATCH, host_path=str(home), read_only=False)
        job = self.snapshots.jobs.job(
            "repository", "scratch", scripts.clear_scratch_argv(names), [mount]
        )
        self.snapshots.jobs.run_checked(job, "removing a restore's scratch directory failed")
        for name in names:
            with contextlib.suppress(OSError):
                (home / name).rmdir()  # the helper removes it; left only if it could not


def _stale(name: str) -> bool:
    """Whether the scratch directory ``PID-TOKEN`` belongs to a process that is gone."""
    pid = name.partition("-")[0]
    if not pid.isdigit():
        return True
    if int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
