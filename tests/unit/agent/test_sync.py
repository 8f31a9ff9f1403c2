"""The sync of the home and /workspace to their shares: the restore marker, the swap, the
scheduling and what is reported. restic is stood in for by ``FakeRestic``, which keeps
"snapshots" as copies of the trees (symlinks kept) and can be told to fail; the trees, the
staging directories and the markers are real files. The real restic runs in the engine tests
(tests/integration/aci_home)."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import httpx
import pytest

from dev8.agent.config import from_environment
from dev8.agent.httpapi import AgentHTTPServer
from dev8.agent.sync import STAGING, Markers, Settings, Sync, prune_due, settings_of
from dev8.agent.sync_restic import Outcome, backup_summary, latest_snapshot


class FakeRestic:
    """restic's commands as the sync uses them, on directories: a snapshot is a copy."""

    def __init__(self, store: Path) -> None:
        self.store = store
        self.calls: list[tuple[str, list[str], float, bool]] = []
        self.fail: dict[str, str] = {}  # command -> error
        self.interrupted = 0
        self.on_backup = lambda: None

    def __call__(
        self, repository: Path, args: list[str], *, limit: float, low_priority: bool
    ) -> Outcome:
        command = args[0]
        self.calls.append((command, args, limit, low_priority))
        snapshots = self.store / repository.parent.name
        if command == "restore":
            # Part of the snapshot arrives before a failure, as when restic is cut short.
            target = Path(args[args.index("--target") + 1])
            shutil.copytree(snapshots / args[1], target, symlinks=True, dirs_exist_ok=True)
        if command in self.fail:
            return Outcome(False, error=self.fail[command])
        if command == "init":
            (repository / "config").write_text("{}")
        if command == "snapshots":
            listed = sorted(snapshots.iterdir()) if snapshots.exists() else []
            return Outcome(True, json.dumps([{"id": p.name, "time": p.name} for p in listed]))
        if command == "backup":
            self.on_backup()
            tree = Path(args[-1])
            number = f"{len(list(snapshots.iterdir())) if snapshots.exists() else 0:04d}"
            shutil.copytree(
                tree,
                snapshots / number / tree.relative_to("/"),  # restic keeps absolute paths
                symlinks=True,
                ignore=shutil.ignore_patterns(STAGING),
            )
            return Outcome(True, json.dumps({"message_type": "summary", "snapshot_id": number}))
        return Outcome(True)

    def interrupt(self) -> None:
        self.interrupted += 1

    def commands(self) -> list[str]:
        return [call[0] for call in self.calls]


@pytest.fixture
def trees(tmp_path: Path) -> dict[str, Path]:
    found = {"home": tmp_path / "tree" / "home", "workspace": tmp_path / "tree" / "workspace"}
    for path in found.values():
        path.mkdir(parents=True)
    (found["home"] / ".bashrc").write_text("the image's skeleton\n")
    return found


@pytest.fixture
def restic(tmp_path: Path) -> FakeRestic:
    return FakeRestic(tmp_path / "snapshots")


def make_sync(tmp_path: Path, trees: dict[str, Path], restic: FakeRestic, **kw: object) -> Sync:
    settings = Settings(root=tmp_path / "shares", trees=trees, **kw)  # type: ignore[arg-type]
    problems: list[str | None] = []
    sync = Sync(settings, restic, Markers(tmp_path / "markers"), on_problem=problems.append)
    sync.problems = problems  # type: ignore[attr-defined]
    return sync


def test_only_a_share_root_turns_the_sync_on() -> None:
    assert settings_of(from_environment({})) is None
    assert settings_of(from_environment({"DEV8_SYNC_ROOT": "relative/path"})) is None
    env = {"DEV8_SYNC_ROOT": "/mnt/dev8-store", "DEV8_SYNC_PASSWORD": "s"}
    config = from_environment({**env, "DEV8_SYNC_INTERVAL_S": "60"})
    settings = settings_of(config)
    assert settings is not None and settings.interval == 60.0
    assert settings.repository("home") == Path("/mnt/dev8-store/home/restic")
    assert "DEV8_SYNC_PASSWORD" not in config.child_env  # never in the services' environment


def test_a_first_start_creates_the_repositories_and_keeps_the_image_home(
    tmp_path: Path, trees: dict[str, Path], restic: FakeRestic
) -> None:
    sync = make_sync(tmp_path, trees, restic)
    assert sync.restore_all() == []
    assert restic.commands() == ["init", "snapshots", "init", "snapshots"]
    assert (trees["home"] / ".bashrc").read_text() == "the image's skeleton\n"
    assert sync.trees["home"].restored is not None
    assert sync.trees["home"].restored["snapshot"] is None
    assert sync.problems == [None]  # type: ignore[attr-defined]


def test_the_latest_snapshot_replaces_the_tree_with_its_links_and_modes(
    tmp_path: Path, trees: dict[str, Path], restic: FakeRestic
) -> None:
    first = make_sync(tmp_path, trees, restic)
    first.restore_all()
    home = trees["home"]
    (home / ".bashrc").write_text("mine\n")
    (home / "venv" / "bin").mkdir(parents=True)
    (home / "venv" / "bin" / "python").symlink_to("/usr/bin/python3")
    (home / "secret").write_text("x")
    (home / "secret").chmod(0o600)
    first.sync("home", limit=60, low_priority=True)
    shutil.rmtree(home)  # a new container: its own disk, the image's home
    home.mkdir()
    (home / ".bashrc").write_text("the image's skeleton\n")
    (home / "only-in-image").write_text("")

    second = make_sync(tmp_path / "new-container", trees, restic)
    second.settings = Settings(root=tmp_path / "shares", trees=trees)
    assert second.restore_all() == []
    assert (home / ".bashrc").read_text() == "mine\n"
    assert (home / "venv" / "bin" / "python").is_symlink()
    assert (home / "secret").stat().st_mode & 0o777 == 0o600
    assert not (home / "only-in-image").exists()
    assert not (home / STAGING).exists()
    assert second.trees["home"].restored["snapshot"] == "0000"  # type: ignore[index]


def test_a_failed_restore_leaves_the_tree_alone_and_is_never_synced_over_the_snapshot(
    tmp_path: Path, trees: dict[str, Path], restic: FakeRestic
) -> None:
    first = make_sync(tmp_path, trees, restic)
    first.restore_all()
    (trees["home"] / "work").write_text("good\n")
    first.sync("home", limit=60, low_priority=True)
    (trees["home"] / "work").unlink()

    restic.fail["restore"] = "Fatal: connection to the share lost"
    again = make_sync(tmp_path / "second", trees, restic)
    warnings = again.restore_all()
    assert len(warnings) == 1 and "connection to the share lost" in warnings[0]
    assert "not synced" in warnings[0] or "not restored" in warnings[0]
    assert not (trees["home"] / "work").exists()  # the half fetch never reached the tree
    assert not (trees["home"] / STAGING).exists()
    again.sync("home", limit=60, low_priority=True)
    assert restic.commands().count("backup") == 1  # only the first container's
    assert "connection to the share lost" in again.problems[-1]  # type: ignore[attr-defined]
    assert Markers(tmp_path / "second" / "markers").read("home") is None

    del restic.fail["restore"]  # the next start in the same container fetches it again
    retry = make_sync(tmp_path / "second", trees, restic)
    assert retry.restore_all() == []
    assert (trees["home"] / "work").read_text() == "good\n"


def test_a_tree_restored_earlier_in_this_container_is_not_restored_again(
    tmp_path: Path, trees: dict[str, Path], restic: FakeRestic
) -> None:
    make_sync(tmp_path, trees, restic).restore_all()
    (trees["home"] / STAGING).mkdir()  # left by a stop between the marker and the cleanup
    (trees["home"] / "newer-than-any-snapshot").write_text("")
    restic.calls.clear()
    again = make_sync(tmp_path, trees, restic)
    assert again.restore_all() == []
    assert restic.commands() == []
    assert (trees["home"] / "newer-than-any-snapshot").exists()
    assert not (trees["home"] / STAGING).exists()


def test_syncs_run_one_tree_at_a_time_at_low_priority_and_prune_now_and_then(
    tmp_path: Path, trees: dict[str, Path], restic: FakeRestic
) -> None:
    sync = make_sync(tmp_path, trees, restic, interval=0.01, prune_every=2, keep_last=3)
    sync.restore_all()
    restic.calls.clear()
    stop = threading.Event()
    passes = []

    def count() -> None:
        passes.append(1)
        if len(passes) >= 8:
            stop.set()

    restic.on_backup = count
    sync.run(stop)
    backups = [call for call in restic.calls if call[0] == "backup"]
    assert [Path(call[1][-1]).name for call in backups][:4] == [
        "home",
        "workspace",
        "home",
        "workspace",
    ]
    assert all(call[3] for call in backups)  # nice + ionice
    assert restic.commands()[:2] == ["unlock", "backup"]  # a killed predecessor's locks
    assert restic.commands().count("unlock") == 2  # once per repository
    forgets = [call[1] for call in restic.calls if call[0] == "forget"]
    assert len(forgets) == 4 and all("--keep-last" in f and "3" in f for f in forgets)
    assert "--prune" in forgets[0]
    status = sync.snapshot()
    assert status["trees"]["home"]["syncs"] == 4
    assert status["trees"]["home"]["last_sync"]["duration_s"] >= 0
    assert status["trees"]["home"]["last_error"] is None


def test_the_final_sync_interrupts_a_running_one_and_runs_at_full_priority(
    tmp_path: Path, trees: dict[str, Path], restic: FakeRestic
) -> None:
    sync = make_sync(tmp_path, trees, restic, final_limit=15.0)
    sync.restore_all()
    restic.calls.clear()
    sync.final()
    assert restic.interrupted == 1
    backups = [call for call in restic.calls if call[0] == "backup"]
    assert len(backups) == 2
    assert not any(call[3] for call in backups)
    assert all(0 < call[2] <= 15.0 for call in backups)
    assert "forget" not in restic.commands()  # no prune in the stop's grace


def test_a_final_sync_with_no_time_left_says_so(
    tmp_path: Path, trees: dict[str, Path], restic: FakeRestic
) -> None:
    sync = make_sync(tmp_path, trees, restic, final_limit=0.0)
    sync.restore_all()
    sync.final()
    assert "backup" not in restic.commands()
    assert sync.trees["home"].last_error == "no time left for the final sync"
    assert "no time left" in sync.problems[-1]  # type: ignore[attr-defined]


def test_a_failed_sync_is_reported_then_cleared_by_the_next(
    tmp_path: Path, trees: dict[str, Path], restic: FakeRestic
) -> None:
    sync = make_sync(tmp_path, trees, restic)
    sync.restore_all()
    restic.fail["backup"] = "Fatal: unable to save snapshot: no space left"
    sync.sync_all(final=False)
    assert sync.trees["home"].last_error == "Fatal: unable to save snapshot: no space left"
    assert "no space left" in sync.problems[-1]  # type: ignore[attr-defined]
    del restic.fail["backup"]
    sync.sync_all(final=False)
    assert sync.trees["home"].last_error is None and sync.problems[-1] is None  # type: ignore[attr-defined]
    assert sync.snapshot()["loss_window_s"] >= sync.settings.interval


def test_restic_output_is_read_for_the_snapshot_ids() -> None:
    assert latest_snapshot("[]") is None
    assert latest_snapshot("not json") is None
    listed = [{"id": "old", "time": "2026-12-01T10:00:00Z"}, {"id": "new", "time": "2026-12-02"}]
    assert latest_snapshot(json.dumps(listed)) == "new"
    output = '{"message_type":"status"}\nnoise\n{"message_type":"summary","snapshot_id":"ab12"}\n'
    assert backup_summary(output)["snapshot_id"] == "ab12"
    assert backup_summary("") == {}
    assert [prune_due(n, 12) for n in (0, 11, 12, 13, 24)] == [False, False, True, False, True]


def test_post_sync_syncs_now_at_full_priority_and_answers_when_done(
    tmp_path: Path, trees: dict[str, Path], restic: FakeRestic
) -> None:
    """Over the agent's real HTTP server: what a stop that waits for the sync calls."""
    sync = make_sync(tmp_path, trees, restic)
    sync.restore_all()
    server = AgentHTTPServer(0, "tok", lambda: None, dict, sync_now=sync.sync_now)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/sync"
    try:
        assert httpx.post(url).status_code == 401
        answer = httpx.post(url, headers={"Authorization": "Bearer tok"}, timeout=30)
        assert answer.status_code == 200
        assert answer.json()["trees"]["home"]["last_sync"]["snapshot"] is not None
        backups = [call for call in restic.calls if call[0] == "backup"]
        assert len(backups) == 2 and not any(call[3] for call in backups)
    finally:
        server.shutdown()
        server.server_close()
    plain = AgentHTTPServer(0, "tok", lambda: None, dict)  # no sync configured: no endpoint
    threading.Thread(target=plain.serve_forever, daemon=True).start()
    try:
        port = plain.server_address[1]
        missing = httpx.post(
            f"http://127.0.0.1:{port}/sync", headers={"Authorization": "Bearer tok"}
        )
        assert missing.status_code == 404
    finally:
        plain.shutdown()
        plain.server_close()
