"""The warm process (``dev8.cli.warm``) without an engine: a real warm process, started as
a `dev8` command starts it, runs commands handed over by ``run_warm`` in this process, with
this process's environment and descriptors, and prints and exits as the command's own
process does."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import dev8
from dev8.cli.warm.client import _wait_for, run_warm
from dev8.cli.warm.server import peer_uid
from dev8.cli.warm.wire import (
    MAX_FRAME,
    WireError,
    answering,
    code_digest,
    receive,
    send,
    socket_path,
    wait_until_answering,
)


def until(condition, timeout: float = 60.0, what: str = "the event") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout:.0f} s")
        time.sleep(0.05)


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A short private runtime directory (a socket's path holds at most 108 bytes), and the
    warm process turned back on."""
    directory = Path(tempfile.mkdtemp(prefix="w", dir="/tmp"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(directory))
    monkeypatch.delenv("DEV8_WARM", raising=False)
    monkeypatch.setenv("COLUMNS", "120")
    yield directory
    subprocess.run(["rm", "-rf", str(directory)], check=False)


@pytest.fixture
def warm(runtime: Path) -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    path = socket_path()
    assert path is not None
    log = open(runtime / "warm.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "dev8.cli.warm", str(path)], stdout=log, stderr=log
    )
    wait_until_answering()
    yield path, process
    process.terminate()
    process.wait(timeout=30)
    log.close()


def own_process(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEV8_WARM": "off"}
    return subprocess.run(
        [sys.executable, "-m", "dev8", *args], capture_output=True, text=True, env=env
    )


@pytest.mark.parametrize(
    "args",
    [["ls", "--json"], ["history", "nosuch"], ["url", "nosuch"], ["start"], ["stop", "--help"]],
)
def test_a_command_prints_and_exits_as_in_its_own_process(warm, capfd, monkeypatch, args):
    expected = own_process(*args)
    capfd.readouterr()
    # This process as `python -m dev8` is: usage lines name the program after it.
    monkeypatch.setattr(sys, "argv", [str(Path(dev8.__file__).with_name("__main__.py"))])
    monkeypatch.setattr(sys.modules["__main__"], "__package__", "dev8")

    code = run_warm(args)

    printed = capfd.readouterr()
    assert code == expected.returncode, printed
    assert (printed.out, printed.err) == (expected.stdout, expected.stderr)


def test_the_command_runs_with_the_callers_environment_and_directory(
    warm, tmp_path, monkeypatch, capfd
):
    elsewhere = tmp_path / "another-home"
    monkeypatch.setenv("DEV8_HOME", str(elsewhere))
    monkeypatch.chdir(tmp_path)

    assert run_warm(["ls", "--json"]) == 0
    assert json.loads(capfd.readouterr().out) == []
    assert (elsewhere / "dev8.db").exists()  # the data directory the caller named

    path, _ = warm
    log = (path.parent.parent / "warm.log").read_text()
    assert "['ls']" in log and "--json" not in log  # the command's name, not its arguments


def test_without_a_warm_process_the_command_is_left_to_the_caller_and_one_is_started(
    runtime,
):
    assert run_warm(["ls"]) is None
    path = socket_path()
    assert path is not None
    wait_until_answering()
    pid = int(path.with_suffix(".lock").read_text())
    os.kill(pid, signal.SIGTERM)
    until(lambda: not answering(path), what="end of the warm process")


def test_a_warm_process_whose_socket_is_removed_ends(warm):
    path, process = warm
    path.unlink()
    assert process.wait(timeout=30) == 0


def test_only_the_listed_commands_and_never_when_off(warm, monkeypatch):
    assert run_warm(["ssh", "somewhere"]) is None  # reads the terminal: its own process
    assert run_warm([]) is None
    monkeypatch.setenv("DEV8_WARM", "off")
    assert run_warm(["ls"]) is None


def test_a_runtime_directory_others_can_open_is_not_used(runtime):
    shared = runtime / f"dev8-{os.getuid()}"
    shared.mkdir(mode=0o700)
    shared.chmod(0o777)
    assert socket_path() is None
    assert run_warm(["ls"]) is None
    assert list(shared.iterdir()) == []  # and no warm process was started there


def test_a_socket_path_too_long_for_the_kernel_is_not_used(monkeypatch, tmp_path):
    deep = tmp_path / ("d" * 90)
    deep.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(deep))
    assert socket_path() is None


def test_the_code_digest_follows_the_code(tmp_path):
    module = tmp_path / "dev8" / "x.py"
    module.parent.mkdir()
    module.write_text("")
    before = code_digest(tmp_path)
    os.utime(module, ns=(0, module.stat().st_mtime_ns + 1_000_000))
    assert code_digest(tmp_path) != before


def test_frames_carry_descriptors_and_bad_ones_are_refused():
    left, right = socket.socketpair()
    with left, right, open(os.devnull) as null:
        send(left, {"argv": ["ls"]}, fds=[null.fileno()] * 3)
        message, fds = receive(right, with_fds=True)
        assert message == {"argv": ["ls"]} and len(fds) == 3
        for fd in fds:
            os.close(fd)

        left.sendall((MAX_FRAME + 1).to_bytes(4, "big"))
        with pytest.raises(WireError, match="bytes"):
            receive(right)
        left.sendall((2).to_bytes(4, "big") + b"[]")
        with pytest.raises(WireError, match="object"):
            receive(right)
        assert peer_uid(right) == os.getuid()


def test_ctrl_c_reaches_the_child_and_its_exit_code_comes_back():
    """The terminal sends Ctrl-C to the `dev8` process; ``_wait_for`` passes it on to the
    child (here a stand-in that dies of it) and returns the code the warm side reports."""
    child = subprocess.Popen(["sleep", "60"])
    ours, theirs = socket.socketpair()
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}

    def warm_side() -> None:
        until(lambda: child.poll() is not None, what="child's end")
        send(theirs, {"exit": 128 + signal.SIGINT})

    threading.Thread(target=warm_side, daemon=True).start()
    threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
    try:
        assert _wait_for(ours, child.pid) == 130
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)
        ours.close()
        theirs.close()
    assert child.wait() == -signal.SIGINT


def test_another_network_namespace_has_a_warm_process_of_its_own(runtime):
    """A child runs in the warm process's namespaces: from another network namespace
    (``unshare --net``, as `ip netns exec` or a container), the socket is another."""
    ask = [sys.executable, "-c", "from dev8.cli.warm.wire import socket_path; print(socket_path())"]
    here = subprocess.run(ask, capture_output=True, text=True, check=True).stdout
    there = subprocess.run(["unshare", "--net", *ask], capture_output=True, text=True, check=True)
    assert here.strip() == str(socket_path())
    assert there.stdout.strip() not in ("", "None", here.strip())
