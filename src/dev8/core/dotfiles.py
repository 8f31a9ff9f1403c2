"""A dotfiles repository: which URLs dev8 accepts, and the name of the variable that hands
the chosen one to a workspace's agent. Pure; shared by the service, the API, the CLI and the
agent."""

from __future__ import annotations

import re

from dev8.core.errors import InvalidInput

DOTFILES_REPO = "DEV8_DOTFILES_REPO"
MAX_URL_LENGTH = 512
# A path of a repository: no whitespace, no quotes or shell-ish characters, no option-like
# start. Hosts are DNS names or IPv4 addresses, an optional port on https and ssh://.
_PATH = r"[A-Za-z0-9._~/+@%=-]*"
_HOST = r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?"
_FORMS = (
    re.compile(rf"https://{_HOST}(:[0-9]{{1,5}})?/{_PATH}"),
    re.compile(rf"ssh://([A-Za-z0-9._-]+@)?{_HOST}(:[0-9]{{1,5}})?/{_PATH}"),
    re.compile(rf"[A-Za-z0-9._-]+@{_HOST}:[A-Za-z0-9._~+%=]{_PATH}"),
    # A repository inside the workspace's own volume (e.g. one folder of a monorepo): it
    # is there at every start and needs no network.
    re.compile(rf"file:///workspace/{_PATH}"),
)


def validate_dotfiles_repo(url: str) -> str:
    """``url`` (trimmed) if dev8 can clone it as a dotfiles repository, "" for none; else
    ``InvalidInput`` naming the accepted forms."""
    url = url.strip()
    if not url:
        return ""
    if len(url) > MAX_URL_LENGTH:
        raise InvalidInput(
            f"the dotfiles repository URL is longer than {MAX_URL_LENGTH} characters"
        )
    if not any(form.fullmatch(url) for form in _FORMS) or "/../" in f"{url}/":
        raise InvalidInput(
            f"invalid dotfiles repository {url[:60]!r}: use https://HOST/PATH, "
            "git@HOST:PATH, ssh://HOST/PATH or file:///workspace/PATH, without a password in it"
        )
    return url
