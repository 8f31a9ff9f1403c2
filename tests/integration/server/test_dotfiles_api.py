"""Dotfiles through the API (real server and database, fake provider and agent): the
account setting on PATCH /users/{name}, the per-workspace override at create, what the
container is given, and one-line refusals of bad URLs."""

from __future__ import annotations

from dev8.core.dotfiles import DOTFILES_REPO
from tests.integration.server.live import create

MINE = "https://github.com/alice/dotfiles"


def container_env(api, workspace_id: str) -> dict[str, str]:
    return dict(api.provider.containers[workspace_id].spec.env)


def test_the_account_setting_and_a_workspace_override(api):
    alice = api.member("alice")
    assert alice.get("/api/v1/users/me").json()["dotfiles_repo"] == ""
    changed = alice.patch("/api/v1/users/alice", json={"dotfiles_repo": MINE})
    assert changed.status_code == 200 and changed.json()["dotfiles_repo"] == MINE
    work = "git@github.com:alice/work.git"
    answers = {
        "plain": create(alice, "plain", start=False),
        "own": create(alice, "own", start=False, dotfiles_repo=work),
        "none": create(alice, "none", start=False, dotfiles_repo=""),
    }
    for accepted in answers.values():
        api.settle(alice, accepted)
    shown = {name: alice.get(f"/api/v1/workspaces/{name}").json() for name in answers}
    assert {name: ws["dotfiles_repo"] for name, ws in shown.items()} == {
        "plain": None,
        "own": work,
        "none": "",
    }
    given = {name: container_env(api, ws["id"]).get(DOTFILES_REPO) for name, ws in shown.items()}
    assert given == {"plain": MINE, "own": work, "none": None}


def test_bad_urls_are_refused_in_one_line(api):
    alice = api.member("alice")
    bad = alice.patch("/api/v1/users/alice", json={"dotfiles_repo": "http://x.org/d"})
    assert bad.status_code == 422 and "invalid dotfiles repository" in bad.json()["message"]
    answer = alice.post(
        "/api/v1/workspaces",
        json={"name": "bad", "dotfiles_repo": "https://u:ghp_x@github.com/a/b"},
    )
    assert answer.status_code == 422 and "\n" not in answer.json()["message"]
    assert alice.get("/api/v1/workspaces").json()["items"] == []
