"""Which server the CLI talks to, if any: `dev8 login URL` keeps its address and an API token
(``server.json`` in the dev8 data directory, mode 0600); ``DEV8_SERVER_URL`` with
``DEV8_TOKEN`` take precedence; without either the CLI is in local mode.

Read by every command to choose its backend, so it imports nothing heavy."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from dev8.core.errors import InvalidInput
from dev8.paths import data_dir


@dataclass(frozen=True)
class Login:
    url: str
    token: str
    token_id: str = ""
    user: str = ""


def login_file() -> Path:
    return data_dir() / "server.json"


def saved_login() -> Login | None:
    """The server to use: ``DEV8_SERVER_URL`` + ``DEV8_TOKEN``, else the one logged in to."""
    url, token = os.environ.get("DEV8_SERVER_URL"), os.environ.get("DEV8_TOKEN")
    if url and token:
        return Login(url, token)
    try:
        data = json.loads(login_file().read_text())
        return Login(data["url"], data["token"], data.get("token_id", ""), data.get("user", ""))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        raise InvalidInput(
            f"{login_file()} is damaged; run `dev8 logout` and log in again"
        ) from None


def save_login(login: Login) -> Path:
    write_private(login_file(), login.__dict__)
    return login_file()


def write_private(path: Path, data: object) -> None:
    """Write ``data`` as JSON readable by this user only."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(data, handle)
    path.chmod(0o600)
