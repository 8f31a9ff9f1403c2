"""Where the agent keeps the system state: its volume, else the home volume (the seed's
two-volume setup), moved once to a volume of its own when one appears. Mount points are
simulated (``os.path.ismount`` answers from a set); the files are real."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dev8.agent.state import HOME_STATE, place_state


@pytest.fixture
def mounts(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    mounted: set[str] = set()
    monkeypatch.setattr(os.path, "ismount", lambda path: str(path) in mounted)
    return mounted


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    state_dir, home = tmp_path / "var-lib-dev8", tmp_path / "home"
    (state_dir / "packages" / "archives" / "partial").mkdir(parents=True)
    home.mkdir()
    return state_dir, home


def test_a_state_volume_is_used_as_it_is(layout: tuple[Path, Path], mounts: set[str]) -> None:
    state_dir, home = layout
    mounts.update({str(state_dir), str(home)})
    assert place_state(state_dir, home) == []
    assert not state_dir.is_symlink()
    assert not (home / HOME_STATE).exists()


def test_two_volumes_keep_the_state_in_the_home(
    layout: tuple[Path, Path], mounts: set[str]
) -> None:
    state_dir, home = layout
    mounts.add(str(home))
    assert place_state(state_dir, home) == []
    kept = home / HOME_STATE
    assert state_dir.is_symlink() and state_dir.resolve() == kept
    assert (kept / "packages" / "archives" / "partial").is_dir()  # the image's cache came along
    assert kept.stat().st_uid == 0 and kept.stat().st_mode & 0o777 == 0o755
    (state_dir / "ssh").mkdir()
    (state_dir / "ssh" / "key").write_text("host key")
    assert (kept / "ssh" / "key").read_text() == "host key"  # written through the link


def test_a_new_container_finds_the_kept_state_and_keeps_it(
    layout: tuple[Path, Path], mounts: set[str]
) -> None:
    state_dir, home = layout
    mounts.add(str(home))
    place_state(state_dir, home)
    (state_dir / "packages" / "state.json").write_text("recorded")
    # An image update: a new container whose /var/lib/dev8 is the image's again.
    state_dir.unlink()
    (state_dir / "packages" / "archives" / "partial").mkdir(parents=True)
    (state_dir / "packages" / "state.json").write_text("the image's, never wins")
    place_state(state_dir, home)
    assert (state_dir / "packages" / "state.json").read_text() == "recorded"
    assert place_state(state_dir, home) == []  # a restart of that container: nothing to do
    assert (state_dir / "packages" / "state.json").read_text() == "recorded"


def test_a_third_volume_receives_the_kept_state_once(
    layout: tuple[Path, Path], mounts: set[str]
) -> None:
    state_dir, home = layout
    mounts.add(str(home))
    place_state(state_dir, home)
    (state_dir / "ssh").mkdir()
    (state_dir / "ssh" / "key").write_text("host key")
    pool = state_dir / "packages" / "archives" / "hello.deb"
    pool.write_text("deb")
    os.link(pool, state_dir / "packages" / "pooled.deb")
    # The workspace is recreated with a volume of its own for the state (fresh: the image's).
    state_dir.unlink()
    (state_dir / "packages" / "archives" / "partial").mkdir(parents=True)
    mounts.add(str(state_dir))
    assert place_state(state_dir, home) == []
    assert not state_dir.is_symlink()
    assert (state_dir / "ssh" / "key").read_text() == "host key"
    moved = state_dir / "packages" / "archives" / "hello.deb"
    assert moved.stat().st_ino == (state_dir / "packages" / "pooled.deb").stat().st_ino
    assert not (home / HOME_STATE).exists()


def test_without_any_volume_the_user_is_told(layout: tuple[Path, Path], mounts: set[str]) -> None:
    state_dir, home = layout
    (warning,) = place_state(state_dir, home)
    assert "will not survive a rebuild" in warning
    assert not state_dir.is_symlink()


def test_a_file_in_the_reserved_place_does_not_stop_the_start(
    layout: tuple[Path, Path], mounts: set[str]
) -> None:
    state_dir, home = layout
    mounts.add(str(home))
    (home / HOME_STATE).symlink_to("/etc")
    place_state(state_dir, home)
    assert (home / HOME_STATE).is_dir() and not (home / HOME_STATE).is_symlink()
    assert state_dir.resolve() == home / HOME_STATE
