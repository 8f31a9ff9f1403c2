"""Dotfiles in a real workspace on the engine, with no network: the repository is made
inside the workspace (``file:///workspace/...``, the form meant for a monorepo's folder), so
the first start finds none (a failed clone, tried again later), the next start installs it,
and a later one does not run it again. A failing install script is reported in the agent's
status while the workspace stays healthy."""

from __future__ import annotations

import shlex
import time

from dev8.core.states import ObservedState
from dev8.service.workspaces import CreateRequest, WorkspaceService


def make_repo(service: WorkspaceService, name: str, path: str, install: str) -> None:
    """A git repository at ``path`` in the workspace, with ``install.sh``, made as dev8."""
    script = (
        f"set -e; mkdir -p {path}; cd {path}; git init -q; "
        f"printf '%s\\n' {shlex.quote(install)} > install.sh; git add install.sh; "
        "git -c user.name=t -c user.email=t@t commit -qm dotfiles"
    )
    result = service.provider.exec(service.get(name).id, ["sh", "-c", script])
    assert result.exit_code == 0, result.output.decode(errors="replace")


def dotfiles_after_start(service: WorkspaceService, name: str, timeout: float = 120) -> dict:
    """The agent's dotfiles status once the install that started with it is over."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = service.agent_status_of(service.get(name))["dotfiles"]
        if status["result"] not in ("running", "not run yet"):
            return status
        time.sleep(0.5)
    raise AssertionError(f"the dotfiles of {name} were not installed within {timeout} s")


def home_file(service: WorkspaceService, name: str, path: str) -> str:
    result = service.provider.exec(service.get(name).id, ["cat", f"/home/dev8/{path}"])
    return result.output.decode() if result.exit_code == 0 else ""


def test_dotfiles_are_installed_once_and_a_new_start_does_not_repeat_them(service):
    url = "file:///workspace/dotfiles-src"
    service.up(CreateRequest(name="dots", dotfiles_repo=url))
    first = dotfiles_after_start(service, "dots")
    assert first["repo"] == url and first["result"].startswith("failed: cloning")
    assert service.get("dots").observed_state is ObservedState.RUNNING
    make_repo(service, "dots", "/workspace/dotfiles-src", 'echo "$(id -un)" >> ~/dotfiles-ran')
    service.restart("dots")
    installed = dotfiles_after_start(service, "dots")
    assert installed["result"] == "installed"
    assert home_file(service, "dots", "dotfiles-ran") == "dev8\n"
    assert "dev8: installed" in home_file(service, "dots", ".local/share/dev8/dotfiles.log")
    service.restart("dots")
    assert dotfiles_after_start(service, "dots") == installed  # same run, same finish time
    assert home_file(service, "dots", "dotfiles-ran") == "dev8\n"


def test_a_failing_install_script_is_reported_and_the_workspace_stays_healthy(service):
    url = "file:///workspace/broken-dotfiles"
    service.up(CreateRequest(name="brokendots", dotfiles_repo=url))
    make_repo(service, "brokendots", "/workspace/broken-dotfiles", "echo missing tool >&2; exit 7")
    service.restart("brokendots")
    status = dotfiles_after_start(service, "brokendots")
    assert status["result"] == "failed: install.sh exited 7: missing tool"
    workspace = service.get("brokendots")
    assert workspace.observed_state is ObservedState.RUNNING
    assert service.agent_status_of(workspace)["health"] is None
