"""The records on disk, in a temporary directory."""

import os
import threading
import time

import pytest

from dev8.agent.packages import record
from dev8.agent.packages.layout import Layout, Recorded


def test_recorded_round_trips_and_ignores_unknown_fields(tmp_path):
    path = tmp_path / "state.json"
    Recorded(packages={"sl": "5.02"}, holds=["sl"], files={"/etc/apt/x.list": None}).save(path)
    path.write_text(path.read_text().replace('"holds"', '"future_field": 1, "holds"'))
    loaded = Recorded.load(path)
    assert loaded.packages == {"sl": "5.02"} and loaded.files == {"/etc/apt/x.list": None}
    assert Recorded.load(tmp_path / "missing.json") == Recorded()


def test_capture_hard_links_from_the_same_volume_and_copies_others(tmp_path):
    layout = Layout(tmp_path / "packages")
    layout.ensure()
    downloaded = layout.archives / "sl_5.02-1_amd64.deb"
    downloaded.write_bytes(b"deb")
    elsewhere = tmp_path / "mine_1.0_all.deb"
    elsewhere.write_bytes(b"local")
    captured = record.capture_debs(
        [str(downloaded), f"{elsewhere}\n", "/nope.deb", "x.txt"], layout
    )
    assert sorted(p.name for p in captured) == ["mine_1.0_all.deb", "sl_5.02-1_amd64.deb"]
    assert os.stat(layout.pool / downloaded.name).st_ino == downloaded.stat().st_ino
    downloaded.unlink()  # `apt clean`
    assert (layout.pool / downloaded.name).read_bytes() == b"deb"
    assert record.capture_debs([str(elsewhere)], layout) == []  # already kept


def test_forget_drops_and_remembers(tmp_path):
    layout = Layout(tmp_path / "packages")
    layout.ensure()
    Recorded(packages={"sl": "1", "vim": "2"}).save(layout.state)
    assert record.forget(["sl", "nothere"], layout) == ["sl"]
    state = Recorded.load(layout.state)
    assert state.packages == {"vim": "2"} and state.forgotten == ["sl", "nothere"]


def test_lock_times_out_instead_of_hanging_an_apt_hook(tmp_path):
    layout = Layout(tmp_path / "packages")
    held = threading.Event()
    release = threading.Event()

    def holder():
        with layout.locked():
            held.set()
            release.wait(5)

    threading.Thread(target=holder, daemon=True).start()
    held.wait(5)
    started = time.monotonic()
    with pytest.raises(TimeoutError), layout.locked(timeout=0.3):
        pass
    assert time.monotonic() - started < 2
    release.set()
