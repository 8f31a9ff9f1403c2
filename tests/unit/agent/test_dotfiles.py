"""The agent's dotfiles: which script runs, what is linked, when it runs again, and the
worker's install against real git repositories made in a temporary directory (no network).
The agent's side runs the worker as the current user instead of dev8."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from dev8.agent import dotfiles
from dev8.agent.dotfiles import (
    INSTALLED,
    Dotfiles,
    Setup,
    Tail,
    choose_script,
    install,
    names_to_link,
    needs_run,
    outcome_from_output,
    read_marker,
    write_marker,
)


def make_repo(root: Path, files: dict[str, str], executable: tuple[str, ...] = ()) -> str:
    """A git repository with ``files`` committed; its file:// URL."""
    root.mkdir(parents=True)
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if name in executable:
            path.chmod(0o755)
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "dotfiles"], check=True)
    return f"file://{root}"


def user_env(home: Path) -> dict[str, str]:
    return {"HOME": str(home), "PATH": os.environ["PATH"], "GIT_TERMINAL_PROMPT": "0"}


# Pure parts -------------------------------------------------------------------------------
def test_the_first_script_in_codespaces_order_is_chosen(tmp_path):
    assert choose_script(tmp_path) is None
    for name in ("setup", "script/setup", "bootstrap", "install"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("")
    assert choose_script(tmp_path) == tmp_path / "install"
    (tmp_path / "install.sh").mkdir()  # a directory is not a script
    assert choose_script(tmp_path) == tmp_path / "install"


def test_only_top_level_dotfiles_are_linked_and_git_files_never(tmp_path):
    for name in (".bashrc", ".config", ".git", ".github", ".gitignore", "README.md"):
        (tmp_path / name).mkdir() if name in (".config", ".git") else (tmp_path / name).touch()
    assert names_to_link(tmp_path) == [".bashrc", ".config"]


def test_it_runs_once_per_url_and_again_after_a_failed_clone():
    url = "https://github.com/me/dotfiles"
    assert not needs_run(None, "")
    assert needs_run(None, url)
    assert not needs_run({"repo": url, "result": INSTALLED, "retry": False}, url)
    assert not needs_run({"repo": url, "result": "failed: exited 1", "retry": False}, url)
    assert needs_run({"repo": url, "result": "failed: cloning", "retry": True}, url)
    assert needs_run({"repo": url, "result": INSTALLED}, "https://github.com/me/other")


def test_the_marker_round_trips_and_a_damaged_one_counts_as_none(tmp_path):
    path = tmp_path / "dotfiles.json"
    assert read_marker(path) is None
    write_marker(path, {"repo": "x", "result": INSTALLED})
    assert read_marker(path) == {"repo": "x", "result": INSTALLED}
    path.write_text("[1, 2")
    assert read_marker(path) is None
    path.write_text("[1, 2]")
    assert read_marker(path) is None


def test_the_worker_outcome_is_its_last_line_else_a_failure():
    assert outcome_from_output('noise\n{"result": "installed", "retry": false}\n') == {
        "result": "installed",
        "retry": False,
    }
    for garbage in ("", "Traceback...\n", '{"other": 1}'):
        assert outcome_from_output(garbage)["result"].startswith("failed:")


def test_the_log_keeps_the_last_bytes_only():
    tail = Tail(limit=10)
    tail.write(b"0123456789")
    tail.write(b"abc")
    assert tail.text() == "3456789abc"


# The worker against real repositories -------------------------------------------------------
def test_an_install_script_runs_in_the_clone(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    url = make_repo(
        tmp_path / "src",
        {"install.sh": '#!/bin/sh\necho hello > "$HOME/ran"\npwd >> "$HOME/ran"\n'},
    )  # not executable: made so, as Codespaces does
    tail = Tail()
    assert install(url, home, user_env(home), tail) == {"result": INSTALLED, "retry": False}
    assert (home / "ran").read_text().split() == ["hello", str(home / ".dotfiles")]
    assert "git clone --depth 1" in tail.text()


def test_a_script_without_an_interpreter_line_runs_with_sh(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    url = make_repo(tmp_path / "src", {"bootstrap": 'echo "$0" > "$HOME/ran"\n'})
    assert install(url, home, user_env(home), Tail())["result"] == INSTALLED
    assert (home / "ran").read_text() == f"{home}/.dotfiles/bootstrap\n"


def test_without_a_script_dotfiles_are_linked_and_what_was_there_is_kept(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text("# the image's\n")
    url = make_repo(tmp_path / "src", {".bashrc": "# mine\n", ".vimrc": "set nu\n"})
    assert install(url, home, user_env(home), Tail())["result"] == INSTALLED
    assert (home / ".bashrc").is_symlink() and (home / ".bashrc").read_text() == "# mine\n"
    assert (home / ".vimrc").resolve() == (home / ".dotfiles/.vimrc").resolve()
    assert (home / ".bashrc.before-dotfiles").read_text() == "# the image's\n"


def test_a_failing_script_is_one_line_and_not_retried(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    url = make_repo(
        tmp_path / "src",
        {"setup.sh": "#!/bin/sh\necho working\necho 'no such package' >&2\nexit 3\n"},
    )
    outcome = install(url, home, user_env(home), Tail())
    assert outcome == {"result": "failed: setup.sh exited 3: no such package", "retry": False}


def test_a_clone_that_fails_is_retried_later(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    outcome = install(f"file://{tmp_path}/missing", home, user_env(home), Tail())
    assert (
        outcome["result"].startswith("failed: cloning: git clone exited 128") and outcome["retry"]
    )


def test_a_script_that_runs_too_long_is_killed_with_its_children(tmp_path, monkeypatch):
    monkeypatch.setattr(dotfiles, "TIMEOUT_S", 1.0)
    home = tmp_path / "home"
    home.mkdir()
    script = '#!/bin/sh\n(sleep 61.5; touch "$HOME/late") &\nsleep 61.5\n'
    url = make_repo(tmp_path / "src", {"install": script})
    started = time.monotonic()
    outcome = install(url, home, user_env(home), Tail())
    assert outcome["result"] == "failed: install did not finish within 1 s"
    assert time.monotonic() - started < 10
    pgrep = subprocess.run(["pgrep", "-f", "sleep 61.5"], capture_output=True, text=True)
    assert pgrep.stdout.strip() == ""


def test_a_second_clone_keeps_the_first_aside(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    first = make_repo(tmp_path / "one", {"install": "#!/bin/sh\ntrue\n"})
    second = make_repo(tmp_path / "two", {"install": "#!/bin/sh\ntrue\n", "marker": "2"})
    install(first, home, user_env(home), Tail())
    (home / ".dotfiles/edited").write_text("mine")
    install(second, home, user_env(home), Tail())
    assert (home / ".dotfiles/marker").exists()
    assert (home / ".dotfiles.previous/edited").read_text() == "mine"


# The agent's side ---------------------------------------------------------------------------
def agent_side(tmp_path: Path, repo: str) -> Dotfiles:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    for directory in ("state", "run/secrets"):
        (tmp_path / directory).mkdir(parents=True, exist_ok=True)
    return Dotfiles(
        Setup(
            repo=repo,
            state_dir=tmp_path / "state",
            run_dir=tmp_path / "run",
            uid=os.getuid(),
            gid=os.getgid(),
            environment=lambda: user_env(home),
        )
    )


def wait_result(agent: Dotfiles) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = agent.status()
        assert status is not None
        if status["result"] != "running":
            return str(status["result"])
        time.sleep(0.05)
    raise AssertionError("the dotfiles install did not finish")


@pytest.mark.skipif(os.geteuid() != 0, reason="the agent starts the worker as another user")
def test_the_agent_installs_in_the_background_once_and_keeps_the_outcome(tmp_path):
    script = '#!/bin/sh\necho run >> "$HOME/count"\n'
    url = make_repo(tmp_path / "src", {"install.sh": script})
    agent = agent_side(tmp_path, url)
    assert agent.status() == {"repo": url, "result": "not run yet", "log": f"~/{dotfiles.LOG_FILE}"}
    agent.start()
    assert wait_result(agent) == INSTALLED
    home = tmp_path / "home"
    assert (home / "count").read_text() == "run\n"
    assert "dev8: installed" in (home / dotfiles.LOG_FILE).read_text()
    marker = json.loads((tmp_path / "state/dotfiles.json").read_text())
    assert marker["repo"] == url and marker["result"] == INSTALLED
    assert agent.status() == {
        "repo": url,
        "result": INSTALLED,
        "finished_at": marker["finished_at"],
        "log": f"~/{dotfiles.LOG_FILE}",
    }
    again = agent_side(tmp_path, url)  # the next start of the workspace
    again.start()
    assert wait_result(again) == INSTALLED
    assert (home / "count").read_text() == "run\n"
    assert again.status() == agent.status()


def test_no_repository_no_status():
    assert Dotfiles(Setup("", Path("/x"), Path("/x"), 0, 0, dict)).status() is None
