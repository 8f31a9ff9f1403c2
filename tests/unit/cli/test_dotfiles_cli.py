"""`--dotfiles` of `dev8 up`/`create` and the dotfiles line of `dev8 status`."""

from __future__ import annotations

import pytest

from dev8.cli.looking import dotfiles_line
from dev8.cli.options import CreateOptions
from dev8.core.errors import InvalidInput


def test_the_option_becomes_the_request_field():
    assert CreateOptions("demo").request().dotfiles_repo is None  # the account's
    assert CreateOptions("demo", dotfiles="").request().dotfiles_repo == ""
    url = "git@github.com:me/dotfiles.git"
    assert CreateOptions("demo", dotfiles=f" {url}").request().dotfiles_repo == url
    with pytest.raises(InvalidInput, match="invalid dotfiles repository"):
        CreateOptions("demo", dotfiles="me/dotfiles").request()


def test_the_status_line_points_at_the_log_when_it_failed():
    repo = "https://github.com/me/dotfiles"
    assert dotfiles_line({"repo": repo, "result": "installed"}) == f"installed ({repo})"
    failed = {"repo": repo, "result": "failed: install.sh exited 1: x", "log": "~/log"}
    assert dotfiles_line(failed) == f"failed: install.sh exited 1: x ({repo}); log: ~/log"
