"""The restore swap on a real file system: every interruption leaves the old tree intact."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dev8.agent import volume_swap
from dev8.core.naming import RESTORE_DIR, VOLUME_MOUNTS

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the swap runs as root; so must this")


def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under root (except the restore area) with its type, mode and content."""
    found = {}
    for path in sorted(root.rglob("*")):
        relative = str(path.relative_to(root))
        if relative.split("/")[0] == RESTORE_DIR:
            continue
        info = os.lstat(path)
        content = (
            os.readlink(path)
            if path.is_symlink()
            else (path.read_bytes() if path.is_file() else None)
        )
        found[relative] = (info.st_mode, info.st_uid, content)
    top = os.lstat(root)
    found["."] = (top.st_mode, top.st_uid, top.st_mtime_ns)
    return found


def make_tree(root: Path, label: str, entries: int = 5) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(entries):
        (root / f"{label}-{i}.txt").write_text(f"{label} {i}\n")
    (root / "shared.txt").write_text(f"shared from {label}\n")
    (root / "dir").mkdir(exist_ok=True)
    (root / "dir" / "inner").write_text(label)
    os.symlink("shared.txt", root / f"link-{label}")


def stage(root: Path, token: str, label: str, entries: int = 5) -> None:
    volume_swap.prepare(root, token)
    incoming = root / RESTORE_DIR / "incoming"
    make_tree(incoming, label, entries)
    os.chown(incoming, 1000, 1000)
    os.chmod(incoming, 0o750)


def test_install_replaces_the_tree_and_the_top_attributes(tmp_path):
    root = tmp_path / "vol"
    make_tree(root, "old")
    stage(root, "t1", "new")
    expected = snapshot(root / RESTORE_DIR / "incoming")
    assert volume_swap.install({"vol": root}, "t1") == {"installed": ["vol"]}
    assert not (root / RESTORE_DIR).exists()
    assert snapshot(root) == expected
    assert os.stat(root).st_uid == 1000 and os.stat(root).st_mode & 0o777 == 0o750


def test_the_agent_rolls_back_an_interrupted_swap_but_leaves_staging_alone(tmp_path):
    root = tmp_path / "vol"
    make_tree(root, "old")
    before = snapshot(root)
    stage(root, "t1", "new")
    recovered = volume_swap.recover({"vol": root}, keep_staging=True)
    assert recovered == {"vol": "a restore is staged; left alone"}
    assert (root / RESTORE_DIR / "incoming").is_dir()
    volume_swap._swap(root, "t1", "vol", ["vol"])
    assert "rolled back" in volume_swap.recover({"vol": root}, keep_staging=True)["vol"]
    assert snapshot(root) == before


def test_prepare_clears_a_stale_staging_area(tmp_path):
    root = tmp_path / "vol"
    make_tree(root, "old")
    before = snapshot(root)
    stage(root, "t1", "half")
    result = volume_swap.prepare(root, "t2")
    assert result["recovered"] == "removed an unfinished restore"
    assert list((root / RESTORE_DIR / "incoming").iterdir()) == []
    volume_swap.abort(root, "t2")
    assert snapshot(root) == before


def test_abort_only_touches_its_own_staging(tmp_path):
    root = tmp_path / "vol"
    make_tree(root, "old")
    stage(root, "t1", "new")
    with pytest.raises(volume_swap.SwapError):
        volume_swap.abort(root, "other")
    assert volume_swap.abort(root, "t1") == {"aborted": True}
    assert not (root / RESTORE_DIR).exists()


def test_install_refuses_an_unknown_token(tmp_path):
    root = tmp_path / "vol"
    make_tree(root, "old")
    before = snapshot(root)
    stage(root, "t1", "new")
    with pytest.raises(volume_swap.SwapError, match="no staged restore"):
        volume_swap.install({"vol": root}, "t2")
    assert snapshot(root) == before


def test_a_failing_rename_in_the_middle_rolls_back(tmp_path, monkeypatch):
    """A rename that fails half way through the swap (simulated: a real one fails only on a
    broken file system) leaves the old tree in place."""
    root = tmp_path / "vol"
    make_tree(root, "old", entries=20)
    before = snapshot(root)
    stage(root, "t1", "new", entries=20)
    real_rename, calls = os.rename, []

    def flaky(src, dst):
        calls.append(src)
        if len(calls) == 30:
            raise OSError(5, "Input/output error")
        return real_rename(src, dst)

    monkeypatch.setattr(volume_swap.os, "rename", flaky)
    with pytest.raises(OSError):
        volume_swap.install({"vol": root}, "t1")
    monkeypatch.setattr(volume_swap.os, "rename", real_rename)
    assert snapshot(root) == before
    assert not (root / RESTORE_DIR).exists()


def test_killed_at_random_moments_the_old_or_the_new_tree_comes_back(tmp_path):
    """The install as the helper runs it (a separate python3 process), killed with SIGKILL at
    random points; the agent's recovery then finds the old tree, or the new one once the
    restore was committed, never a mixture."""
    program = Path(volume_swap.__file__).read_text()
    rng = random.Random(5)
    states = set()
    for attempt in range(6):
        root = tmp_path / f"vol{attempt}"
        make_tree(root, "old", entries=3000)
        before = snapshot(root)
        stage(root, "t", "new", entries=3000)
        after = snapshot(root / RESTORE_DIR / "incoming")
        process = subprocess.Popen([sys.executable, "-c", program, "install", "t", str(root)])
        # From the moment the swap begins (a loaded machine may take long to start Python),
        # then a random moment into it.
        deadline = time.monotonic() + 30
        while process.poll() is None and time.monotonic() < deadline:
            if (volume_swap.read_journal(root) or {}).get("state") != "staging":
                break
            time.sleep(0.001)
        time.sleep(rng.uniform(0.0, 0.05))
        process.send_signal(signal.SIGKILL)
        process.wait()
        states.add((volume_swap.read_journal(root) or {}).get("state"))
        volume_swap.recover({"vol": root}, keep_staging=True)
        assert snapshot(root) in (before, after), f"attempt {attempt}"
        assert not (root / RESTORE_DIR).exists()
    assert states & {"moving-out", "moving-in", "swapped"}, states


def test_command_line(tmp_path, capsys):
    root = tmp_path / "vol"
    make_tree(root, "old")
    assert volume_swap.main(["prepare", "t", str(root)]) == 0
    assert volume_swap.main(["status", "", str(root)]) == 0
    assert '"state": "staging"' in capsys.readouterr().out
    assert volume_swap.main(["install", "nope", str(root)]) == 1
    assert volume_swap.main(["bogus"]) == 2


def test_roots_are_named_by_their_role_where_workspaces_mount_them():
    assert volume_swap.named_roots(["/home/dev8", "/workspace/", "x=/a=b", "/tmp/v"]) == {
        "home": Path("/home/dev8"),
        "workspace": Path("/workspace/"),
        "x": Path("/a=b"),
        "/tmp/v": Path("/tmp/v"),
    }
    assert {VOLUME_MOUNTS[role]: role for role in VOLUME_MOUNTS} == volume_swap.MOUNTS


def test_install_swaps_all_or_none(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    make_tree(first, "old-a")
    make_tree(second, "old-b")
    before = snapshot(first), snapshot(second)
    stage(first, "t", "new-a")
    stage(second, "other", "new-b")  # not part of this restore: its swap fails
    with pytest.raises(volume_swap.SwapError):
        volume_swap.install({"a": first, "b": second}, "t")
    assert (snapshot(first), snapshot(second)) == before
    assert not (first / RESTORE_DIR).exists()
    stage(first, "t", "new-a")
    stage(second, "t", "new-b")
    volume_swap.install({"a": first, "b": second}, "t")
    assert (first / "new-a-0.txt").exists() and (second / "new-b-0.txt").exists()
    assert not (first / RESTORE_DIR).exists() and not (second / RESTORE_DIR).exists()


def test_reserved_name_matches_core():
    assert volume_swap.RESTORE_DIR == RESTORE_DIR
