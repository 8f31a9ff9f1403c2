"""A user's dotfiles, as Coder and Codespaces do them: the repository is cloned into
``~/.dotfiles`` once and its install script run (else its top-level dotfiles linked into the
home), in the background after the services started, so a slow or broken repository never
delays or blocks the start.

Two halves. The agent (root) decides whether to run, starts the work as the user, bounds it
in time, and keeps the outcome in a marker on the state volume, where the user cannot edit
it. The work itself (``python -m dev8.agent.dotfiles URL``) runs as the user, so every file it
touches in the home is touched with the user's rights; it prints its outcome as one JSON line.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("dev8.agent")

# Codespaces' order: the first one that exists is run.
INSTALL_SCRIPTS = (
    "install.sh",
    "install",
    "bootstrap.sh",
    "bootstrap",
    "script/setup",
    "setup.sh",
    "setup",
)
# Top-level names of a repository that are never linked into the home.
NOT_LINKED = frozenset({".git", ".github", ".gitignore", ".gitmodules", ".gitattributes"})
CLONE_DIR = ".dotfiles"
LOG_FILE = ".local/share/dev8/dotfiles.log"
TIMEOUT_S = 300.0
# The agent's backstop beyond the worker's own deadline (the worker writes its log first).
BACKSTOP_S = 30.0
LOG_LIMIT = 64 * 1024
MARKER = "dotfiles.json"
INSTALLED, RUNNING = "installed", "running"
ASKPASS = """#!/bin/sh
# Answers git's questions for https://github.com from the token in /run (never on disk).
case "$1" in
  Username*) echo x-access-token ;;
  *) cat '{token}' ;;
esac
"""


# Pure parts -----------------------------------------------------------------------------
def choose_script(repo: Path) -> Path | None:
    """The install script to run: the first of ``INSTALL_SCRIPTS`` that is a file."""
    for name in INSTALL_SCRIPTS:
        candidate = repo / name
        if candidate.is_file():
            return candidate
    return None


def script_argv(script: Path) -> list[str]:
    """How to run ``script``: itself, made executable, when it names its interpreter;
    else with sh, as a shell would (Codespaces runs scripts that lack the ``#!`` line)."""
    with script.open("rb") as handle:
        if handle.read(2) != b"#!":
            return ["/bin/sh", str(script)]
    script.chmod(script.stat().st_mode | 0o100)
    return [str(script)]


def names_to_link(repo: Path) -> list[str]:
    """The top-level dotfiles of ``repo`` (``.bashrc``, ``.config``…), sorted."""
    return sorted(
        entry.name
        for entry in repo.iterdir()
        if entry.name.startswith(".") and entry.name not in NOT_LINKED
    )


def needs_run(marker: Mapping[str, object] | None, repo: str) -> bool:
    """Whether ``repo`` is still to be installed, given the marker of the last run: never
    run, another repository since, or a run that never got to the install (a failed clone
    is tried again at the next start; a failed install script is not)."""
    if not repo:
        return False
    if marker is None or marker.get("repo") != repo:
        return True
    return bool(marker.get("retry"))


def read_marker(path: Path) -> dict[str, object] | None:
    try:
        marker = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def write_marker(path: Path, marker: Mapping[str, object]) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(dict(marker)) + "\n")
    os.replace(temporary, path)


def one_line(text: str, limit: int = 200) -> str:
    """The last non-empty line of ``text``, shortened: what a status line can hold."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    last = lines[-1] if lines else "no output"
    return last if len(last) <= limit else last[: limit - 1] + "…"


def outcome_from_output(stdout: str) -> dict[str, object]:
    """The worker's outcome: its last stdout line, a JSON object; a failure otherwise."""
    lines = stdout.strip().splitlines()
    try:
        outcome = json.loads(lines[-1]) if lines else None
    except ValueError:
        outcome = None
    if isinstance(outcome, dict) and isinstance(outcome.get("result"), str):
        return outcome
    return {"result": "failed: the dotfiles worker ended without an outcome", "retry": True}


# The worker: runs as the user -------------------------------------------------------------
class Tail:
    """The last ``limit`` bytes of everything written to it."""

    def __init__(self, limit: int = LOG_LIMIT) -> None:
        self.limit = limit
        self.data = bytearray()

    def write(self, chunk: bytes) -> None:
        self.data += chunk
        if len(self.data) > self.limit:
            del self.data[: len(self.data) - self.limit]

    def text(self) -> str:
        return self.data.decode("utf-8", "replace")


class Failed(Exception):
    pass


def run_step(
    what: str, argv: list[str], cwd: Path, env: Mapping[str, str], tail: Tail, deadline: float
) -> None:
    """Run ``argv`` (``what``, for messages) with its output into ``tail``; ``Failed`` on a
    non-zero exit or when the deadline passes (its whole process group is killed then)."""
    tail.write(f"$ {' '.join(argv)}\n".encode())
    process = subprocess.Popen(
        argv,
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    assert process.stdout is not None
    reader = threading.Thread(target=_pump, args=(process.stdout, tail), daemon=True)
    reader.start()
    try:
        code = process.wait(timeout=max(deadline - time.monotonic(), 0.1))
    except subprocess.TimeoutExpired:
        _kill_group(process)
        reader.join(1.0)
        raise Failed(f"{what} did not finish within {TIMEOUT_S:.0f} s") from None
    reader.join(1.0)
    if code != 0:
        raise Failed(f"{what} exited {code}: {one_line(tail.text())}")


def _pump(stream: object, tail: Tail) -> None:
    read = stream.read1  # type: ignore[attr-defined]
    while chunk := read(65536):
        tail.write(chunk)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def clone(repo: str, home: Path, env: Mapping[str, str], tail: Tail, deadline: float) -> Path:
    """``repo`` freshly cloned into ``~/.dotfiles``; an earlier clone is kept beside it as
    ``~/.dotfiles.previous`` (the user may have changed it)."""
    target = home / CLONE_DIR
    if target.exists() or target.is_symlink():
        previous = home / f"{CLONE_DIR}.previous"
        if previous.is_dir() and not previous.is_symlink():
            shutil.rmtree(previous)
        else:
            previous.unlink(missing_ok=True)
        target.rename(previous)
    argv = ["git", "clone", "--depth", "1", "--", repo, str(target)]
    run_step("git clone", argv, home, env, tail, deadline)
    return target


def link_dotfiles(source: Path, home: Path, tail: Tail) -> None:
    """Link each top-level dotfile of ``source`` into ``home``; what was there is kept as
    NAME.before-dotfiles."""
    for name in names_to_link(source):
        target = home / name
        if target.is_symlink():
            target.unlink()
        elif target.exists():
            target.rename(home / f"{name}.before-dotfiles")
        target.symlink_to(source / name)
        tail.write(f"linked ~/{name}\n".encode())


def install(repo: str, home: Path, env: Mapping[str, str], tail: Tail) -> dict[str, object]:
    """Clone ``repo`` and install it; the outcome as the marker keeps it."""
    deadline = time.monotonic() + TIMEOUT_S
    try:
        source = clone(repo, home, env, tail, deadline)
    except (Failed, OSError) as exc:
        return {"result": f"failed: cloning: {exc}", "retry": True}
    script = choose_script(source)
    try:
        if script is None:
            link_dotfiles(source, home, tail)
        else:
            argv = script_argv(script)
            run_step(script.name, argv, source, env, tail, deadline)
    except (Failed, OSError) as exc:
        return {"result": f"failed: {exc}", "retry": False}
    return {"result": INSTALLED, "retry": False}


def write_log(path: Path, tail: Tail) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(tail.data))


def worker(repo: str) -> int:
    """The user's side: install ``repo`` into $HOME, keep the output's tail in the log,
    print the outcome as one JSON line."""
    home = Path(os.environ["HOME"])
    tail = Tail()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # still write the log
    outcome: dict[str, object] = {"result": "failed: stopped", "retry": True}
    try:
        outcome = install(repo, home, os.environ, tail)
    finally:
        tail.write(f"dev8: {outcome['result']}\n".encode())
        try:
            write_log(home / LOG_FILE, tail)
        except OSError as exc:
            outcome["result"] = f"{outcome['result']} (log not written: {exc})"
        print(json.dumps(outcome), flush=True)
    return 0


# The agent's side: runs as root ---------------------------------------------------------
@dataclass
class Setup:
    """What the agent needs to start the worker as the user."""

    repo: str
    state_dir: Path
    run_dir: Path
    uid: int
    gid: int
    environment: Callable[[], dict[str, str]]  # the user's environment (HOME, PATH…)


def worker_environment(setup: Setup, askpass: Path | None) -> dict[str, str]:
    env = {**setup.environment(), "GIT_TERMINAL_PROMPT": "0"}
    env["GIT_SSH_COMMAND"] = "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new"
    if askpass is not None:
        env["GIT_ASKPASS"] = str(askpass)
    return env


class Dotfiles:
    """Installs the repository once, in the background; its outcome for ``/status``."""

    def __init__(self, setup: Setup) -> None:
        self.setup = setup
        self.marker_path = setup.state_dir / MARKER
        self._running = False
        self._process: subprocess.Popen[str] | None = None

    def status(self) -> dict[str, object] | None:
        """The repository, the outcome ("running", "installed", "failed: why", "not run
        yet"), when it finished (seconds since the epoch) and where its log is."""
        if not self.setup.repo:
            return None
        status: dict[str, object] = {"repo": self.setup.repo, "result": "not run yet"}
        marker = read_marker(self.marker_path) or {}
        if self._running:
            status["result"] = RUNNING
        elif marker.get("repo") == self.setup.repo:
            status["result"] = marker.get("result", "unknown")
            status["finished_at"] = marker.get("finished_at")
        return {**status, "log": f"~/{LOG_FILE}"}

    def start(self) -> None:
        """Start the install in the background if it is due; returns at once."""
        if not needs_run(read_marker(self.marker_path), self.setup.repo):
            return
        self._running = True
        threading.Thread(target=self._run, name="dotfiles", daemon=True).start()

    def stop(self) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)

    def _run(self) -> None:
        try:
            outcome = self._work()
        except OSError as exc:
            outcome = {"result": f"failed: cannot start the install: {exc}", "retry": True}
        write_marker(
            self.marker_path, {"repo": self.setup.repo, **outcome, "finished_at": time.time()}
        )
        self._running = False
        log.info("dotfiles %s: %s", self.setup.repo, outcome["result"])

    def _work(self) -> dict[str, object]:
        log.info("installing the dotfiles of %s", self.setup.repo)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "dev8.agent.dotfiles", self.setup.repo],
            cwd="/",
            env=worker_environment(self.setup, self._askpass()),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            user=self.setup.uid,
            group=self.setup.gid,
            extra_groups=[],
            start_new_session=True,
        )
        try:
            stdout, _ = self._process.communicate(timeout=TIMEOUT_S + BACKSTOP_S)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.communicate()
            return {"result": f"failed: did not finish within {TIMEOUT_S:.0f} s", "retry": False}
        return outcome_from_output(stdout)

    def _askpass(self) -> Path | None:
        """A helper that hands git the GitHub token from /run, for https://github.com."""
        token = self.setup.run_dir / "secrets" / "github-token"
        if not (self.setup.repo.startswith("https://github.com/") and token.exists()):
            return None
        path = self.setup.run_dir / "git-askpass"
        path.write_text(ASKPASS.format(token=token))
        path.chmod(0o755)
        return path


if __name__ == "__main__":
    sys.exit(worker(sys.argv[1]))
