"""Server mode: `dev8 server` runs it; `dev8 login`/`logout` switch the CLI to it and back;
`dev8 user`, `dev8 token` and `dev8 audit` manage it."""

from __future__ import annotations

import getpass
import os
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from dev8.cli.output import console, err_console, plain_table, print_json
from dev8.core.errors import InvalidInput

if TYPE_CHECKING:
    from datetime import datetime

    from dev8.client import Client
    from dev8.client.models import User

app = typer.Typer(
    help="Run the dev8 server (REST API, users, reconciler, idle auto-stop).",
    invoke_without_command=True,
)
users_app = typer.Typer(help="Users of the dev8 server you are logged in to.", no_args_is_help=True)
tokens_app = typer.Typer(help="Your API tokens on the dev8 server.", no_args_is_help=True)
JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")


@app.callback()
def server(
    ctx: typer.Context,
    host: str = typer.Option(None, help="Address to listen on [env DEV8_HOST; 127.0.0.1]."),
    port: int = typer.Option(None, help="Port [env DEV8_PORT; 8700]."),
    dev: bool = typer.Option(
        False, "--dev", help="Development mode: runs without DEV8_SECRET_KEY (not for teams)."
    ),
    tls_cert: Path = typer.Option(
        None, "--tls-cert", help="Serve HTTPS with this PEM certificate chain [env DEV8_TLS_CERT]."
    ),
    tls_key: Path = typer.Option(
        None, "--tls-key", help="The certificate's PEM private key [env DEV8_TLS_KEY]."
    ),
) -> None:
    """Serve the REST API under /api/v1 (docs at /api/v1/docs), the sign-in page and every
    workspace's IDE, SSH and ports (docs/remote-access.md), on SQLite in the dev8 data
    directory, or PostgreSQL with DEV8_DATABASE_URL. Settings come from DEV8_* variables;
    see docs/server.md. The first start creates the admin user."""
    if ctx.invoked_subcommand is not None:
        return
    from dev8.server.main import serve
    from dev8.server.settings import load_settings

    overrides = {
        key: value
        for key, value in (
            ("host", host),
            ("port", port),
            ("dev", dev or None),
            ("tls_cert", tls_cert),
            ("tls_key", tls_key),
        )
        if value is not None
    }
    serve(load_settings(**overrides))


@app.command()
def keygen() -> None:
    """Print a new secret key for DEV8_SECRET_KEY (it seals workspace secrets at rest)."""
    from dev8.store.secretbox import new_key

    typer.echo(new_key())


def login(
    url: str = typer.Argument(..., help="The server, e.g. http://127.0.0.1:8700"),
    user: str = typer.Option(None, "--user", "-u", help="User name (default: yours)."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from stdin (scripts)."
    ),
    token_stdin: bool = typer.Option(
        False, "--token-stdin", help="Read an API token from stdin instead of a password."
    ),
    token: str = typer.Option(
        None,
        "--token",
        help="An API token in the command line, where `ps` and your shell history show it: "
        "prefer --token-stdin or DEV8_TOKEN.",
    ),
) -> None:
    """Log in to a dev8 server: every workspace command then goes through it, until
    `dev8 logout`. With an API token from --token-stdin or, when no user or password
    option is given, DEV8_TOKEN, no password is asked. Your dev8 SSH key (and
    ~/.ssh/*.pub) are added to your account so that `dev8 ssh` works."""
    from dev8.cli.login import Login, save_login
    from dev8.client import Client

    url = url.rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise InvalidInput(f"{url!r} is not a server address; e.g. http://127.0.0.1:8700")
    secret = given_token(token, token_stdin, password_stdin or user is not None)
    if secret is None:
        name = user or getpass.getuser()
        if password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = getpass.getpass(f"Password for {name} at {url}: ")
        with Client(url) as anonymous:
            issued = anonymous.login(
                name, password, token_name=f"dev8 CLI on {socket.gethostname()}"
            )
        secret, token_id = issued["token"], issued["id"]
    else:
        token_id = ""
    with Client(url, token=secret) as client:
        me = client.users.me()
        _add_ssh_keys(me)
    path = save_login(Login(url=url, token=secret, token_id=token_id, user=me.name))
    console.print(f"[green]✓[/] Logged in to {url} as [bold]{me.name}[/] ({path} keeps the token)")


def given_token(option: str | None, from_stdin: bool, password_login: bool) -> str | None:
    """The API token to log in with, if any: from stdin, from ``--token`` (with a warning:
    other users see a command line in `ps`), or from DEV8_TOKEN unless a user or password
    option asks for a password login."""
    if from_stdin and (option is not None or password_login):
        raise InvalidInput("--token-stdin takes the token from stdin: give no --token or password")
    if from_stdin:
        token = sys.stdin.readline().strip()
        if not token:
            raise InvalidInput("--token-stdin read no token; pipe one in, e.g. < token-file")
        return token
    if option is not None:
        err_console.print(
            "[yellow]warning:[/] --token shows the token in `ps` and your shell history; "
            "use --token-stdin or DEV8_TOKEN",
            highlight=False,
        )
        return option
    return None if password_login else os.environ.get("DEV8_TOKEN") or None


def _add_ssh_keys(me: User) -> None:
    from dev8.cli.ssh import authorized_keys

    mine = [line for line in authorized_keys().splitlines() if line.strip()]
    known = me.attrs.get("ssh_keys", "").splitlines()
    missing = [line for line in mine if line not in known]
    if missing:
        me.update(ssh_keys="\n".join([*known, *missing]) + "\n")


def logout() -> None:
    """Revoke the token of `dev8 login` and return to local mode."""
    from dev8.cli.login import login_file, saved_login
    from dev8.client import Client
    from dev8.core.errors import Dev8Error

    if os.environ.get("DEV8_TOKEN"):
        raise InvalidInput("DEV8_SERVER_URL and DEV8_TOKEN are set; unset them to log out")
    found = saved_login()
    if found is None:
        console.print("Not logged in; dev8 is in local mode.")
        return
    note = ""
    try:
        with Client(found.url, token=found.token) as client:
            client.tokens.revoke_current()
    except Dev8Error as exc:
        note = f" (the token could not be revoked: {exc.message})"
    login_file().unlink(missing_ok=True)
    console.print(f"[green]✓[/] Logged out of {found.url}; dev8 is in local mode{note}")


def _client() -> Client:
    from dev8.cli.context import server_only

    return server_only("`dev8 user`, `dev8 token` and `dev8 audit`").client


@users_app.command("ls")
def users_ls(as_json: bool = JSON) -> None:
    """List the users (admins)."""
    users = _client().users.list()
    if as_json:
        print_json([user.attrs for user in users])
        return
    table = plain_table("NAME", "ROLE", "SSH KEYS", "CREATED")
    for user in users:
        keys = len([k for k in user.attrs["ssh_keys"].splitlines() if k.strip()])
        table.add_row(user.name, user.attrs["role"], str(keys), user.attrs["created_at"][:19])
    console.print(table)


@users_app.command("add")
def users_add(
    name: str = typer.Argument(...),
    admin: bool = typer.Option(False, "--admin", help="Make them an admin."),
) -> None:
    """Create a user with a generated password, shown once (admins)."""
    from dev8.service.accounts import new_password

    password = new_password()
    _client().users.create(name, password, "admin" if admin else "member")
    console.print(f"[green]✓[/] Created {name}; password (shown once): {password}")


@users_app.command("rm")
def users_rm(name: str = typer.Argument(...)) -> None:
    """Delete a user who has no workspaces left (admins)."""
    _client().users.get(name).remove()
    console.print(f"[green]✓[/] Deleted {name}")


@users_app.command("passwd")
def users_passwd(name: str = typer.Argument(None, help="Whose (admins); default: yours.")) -> None:
    """Change a password (yours asks for the current one)."""
    client = _client()
    user = client.users.get(name) if name else client.users.me()
    fields = {"password": getpass.getpass("New password: ")}
    if not name:
        fields["current_password"] = getpass.getpass("Current password: ")
    user.update(**fields)
    console.print(f"[green]✓[/] Password of {user.name} changed")


@users_app.command("dotfiles")
def users_dotfiles(
    url: str = typer.Argument(None, help='The repository; "" for none; omitted: show it.'),
    name: str = typer.Option(None, "--user", help="Whose (admins); default: yours."),
) -> None:
    """Show or set the dotfiles repository cloned into each new workspace at its first
    start (a workspace's own `--dotfiles` wins)."""
    client = _client()
    user = client.users.get(name) if name else client.users.me()
    if url is not None:
        user.update(dotfiles_repo=url)
        console.print(f"[green]✓[/] Dotfiles of {user.name}: {url or 'none'}")
        return
    print(user.attrs.get("dotfiles_repo") or "none")


@users_app.command("disable")
def users_disable(name: str = typer.Argument(...)) -> None:
    """Refuse a user's tokens, sessions and sign-ins and stop their running workspaces
    (admins; their volumes are kept)."""
    _client().users.get(name).disable()
    console.print(f"[green]✓[/] Disabled {name}; their running workspaces are being stopped")


@users_app.command("enable")
def users_enable(name: str = typer.Argument(...)) -> None:
    """Let a disabled user in again (admins); their workspaces stay as they are."""
    _client().users.get(name).enable()
    console.print(f"[green]✓[/] Enabled {name}")


@tokens_app.command("ls")
def tokens_ls(as_json: bool = JSON) -> None:
    """Your API tokens (the tokens themselves were shown once)."""
    from dev8.cli import render

    tokens = _client().tokens.list()
    if as_json:
        print_json([token.attrs for token in tokens])
        return
    table = plain_table("ID", "NAME", "PREFIX", "EXPIRES", "LAST USED", "STATE")
    for token in tokens:
        a = token.attrs
        state = "revoked" if a["revoked_at"] else "active"
        last = render.ago(_parse(a["last_used_at"])) if a["last_used_at"] else "-"
        table.add_row(a["id"], a["name"], a["prefix"] + "…", a["expires_at"][:10], last, state)
    console.print(table)


@tokens_app.command("create")
def tokens_create(
    name: str = typer.Argument(..., help="What it is for, e.g. ci"),
    days: int = typer.Option(None, "--days", help="Lifetime in days (default: the server's)."),
) -> None:
    """Create an API token, shown once (for scripts: DEV8_SERVER_URL + DEV8_TOKEN)."""
    token = _client().tokens.create(name, days)
    console.print(f"[green]✓[/] Token {name} (expires {token.attrs['expires_at'][:10]}):")
    typer.echo(token.attrs["token"])


@tokens_app.command("revoke")
def tokens_revoke(token_id: str = typer.Argument(..., help="The ID from `dev8 token ls`.")) -> None:
    """Revoke one of your tokens (admins: anyone's)."""
    from dev8.client.models import Token

    Token(_client(), {"id": token_id}).revoke()
    console.print(f"[green]✓[/] Revoked {token_id}")


def audit(
    limit: int = typer.Option(50, help="How many entries."),
    actor: str = typer.Option(None, help="Only this user's requests."),
    as_json: bool = JSON,
) -> None:
    """The server's audit log: every mutating request, who, from where, result (admins)."""
    entries = _client().audit(limit=limit, actor=actor)["items"]
    if as_json:
        print_json(entries)
        return
    table = plain_table("WHEN", "WHO", "FROM", "REQUEST", "STATUS", "ERROR")
    for e in entries:
        when = _parse(e["at"]).astimezone().strftime("%Y-%m-%d %H:%M:%S")
        request = f"{e['method']} {e['path']}"
        table.add_row(when, e["actor"], e["source"], request, str(e["status"]), e["message"])
    console.print(table)


def _parse(value: str) -> datetime:
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="server")
    root.add_typer(users_app, name="user")
    root.add_typer(tokens_app, name="token")
    root.command()(login)
    root.command()(logout)
    root.command()(audit)
