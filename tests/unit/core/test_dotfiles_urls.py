"""Which dotfiles repository URLs dev8 accepts."""

from __future__ import annotations

import pytest

from dev8.core.dotfiles import MAX_URL_LENGTH, validate_dotfiles_repo
from dev8.core.errors import InvalidInput


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/me/dotfiles",
        "https://git.example.com:8443/team/dotfiles.git",
        "git@github.com:me/dotfiles.git",
        "ssh://git@git.example.com:2222/me/dotfiles",
        "file:///workspace/monorepo/dotfiles",
    ],
)
def test_https_ssh_and_in_workspace_urls_are_accepted(url):
    assert validate_dotfiles_repo(f"  {url} ") == url


def test_empty_means_none():
    assert validate_dotfiles_repo("") == "" and validate_dotfiles_repo("  ") == ""


@pytest.mark.parametrize(
    "url",
    [
        "http://github.com/me/dotfiles",  # cleartext
        "https://me:ghp_secret@github.com/me/dotfiles",  # a credential would be stored
        "file:///etc/skel",  # outside the workspace
        "file:///workspace/../etc",
        "/workspace/dotfiles",
        "-uhttps://github.com/x",  # an option to git
        "git@github.com:-oProxyCommand=x",
        "ext::sh -c touch% /tmp/pwned",
        "https://github.com/me/dot files",
        "https://github.com/me/dotfiles\nhttps://evil",
        "me/dotfiles",
    ],
)
def test_other_forms_are_one_line_errors(url):
    with pytest.raises(InvalidInput) as caught:
        validate_dotfiles_repo(url)
    assert "\n" not in caught.value.message


def test_length_is_bounded():
    url = "https://github.com/" + "a" * MAX_URL_LENGTH
    with pytest.raises(InvalidInput, match="longer than"):
        validate_dotfiles_repo(url)
