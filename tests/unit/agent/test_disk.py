"""Measuring the volumes and turning the result into quota warnings, on real directories."""

import threading
import time

from dev8.agent.config import from_environment
from dev8.agent.disk import DiskUsage, motd_text, tree_bytes
from dev8.core.quotas import DEFAULT_QUOTAS, GIB


def fill(path, size):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\1" * size)


def test_tree_bytes_counts_allocated_blocks_not_holes(tmp_path):
    fill(tmp_path / "a" / "data", 256 * 1024)
    with (tmp_path / "sparse").open("wb") as handle:
        handle.truncate(100 * 1024**2)
    used = tree_bytes(tmp_path)
    assert 256 * 1024 <= used < 2 * 1024**2


def test_quota_warnings_follow_the_measurements(tmp_path):
    home, work = tmp_path / "home", tmp_path / "work"
    fill(home / "big", 900 * 1024)
    fill(work / "small", 10 * 1024)
    seen = []
    disk = DiskUsage(
        {"home": home, "workspace": work},
        quotas={"home": 1024**2, "workspace": 10 * 1024**2},
        on_warnings=seen.append,
    )
    disk.measure_once()
    assert len(seen) == 1 and len(seen[0]) == 1
    assert seen[0][0].startswith("home volume nearly full")
    snapshot = disk.snapshot()
    assert snapshot["home"]["quota_level"] == "warning"
    assert snapshot["home"]["quota_bytes"] == 1024**2
    assert snapshot["workspace"]["quota_level"] == "ok"
    fill(home / "more", 200 * 1024)
    disk.measure_once()
    assert seen[-1][0].startswith("home volume over its limit")
    (home / "big").unlink()
    (home / "more").unlink()
    disk.measure_once()
    assert seen[-1] == []


def test_run_measures_until_stopped(tmp_path):
    fill(tmp_path / "v" / "f", 4096)
    disk = DiskUsage({"home": tmp_path / "v"}, interval=0.01, quotas={"home": GIB})
    stop = threading.Event()
    thread = threading.Thread(target=disk.run, args=(stop,))
    thread.start()
    deadline = time.monotonic() + 10
    while "used_bytes" not in disk.snapshot()["home"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "used_bytes" in disk.snapshot()["home"]
    stop.set()
    thread.join(5)
    assert not thread.is_alive()


def test_motd_text_says_the_limit_is_not_enforced():
    assert motd_text([]) is None
    text = motd_text(["home volume nearly full: home 17 GiB of 20 GiB (85%)"])
    assert text.startswith("dev8: home volume nearly full")
    assert "cannot enforce" in text and text.endswith(".\n")


def test_agent_reads_quotas_and_interval_from_its_environment():
    config = from_environment({"DEV8_QUOTA_HOME_BYTES": str(30 * GIB), "DEV8_DISK_INTERVAL": "2.5"})
    assert config.quotas == {**DEFAULT_QUOTAS, "home": 30 * GIB}
    assert config.disk_interval == 2.5
    assert from_environment({"DEV8_DISK_INTERVAL": "soon"}).disk_interval == 60.0
