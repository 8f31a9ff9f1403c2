"""Workspace lifecycle commands: up, create, start, stop, restart, rebuild, rm, ls, status,
history, logs, exec, ssh, url, password, config-ssh."""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer
from rich.status import Status
from rich.table import Table

from dev8.cli.context import local_service
from dev8.cli.output import console, err_console, print_json
from dev8.cli.render import (
    disk_dict,
    disk_uses,
    history_table,
    operation_dict,
    state_text,
    use_text,
    workspace_dict,
    workspace_table,
)
from dev8.core.errors import InvalidInput
from dev8.core.images import workspace_image
from dev8.core.quotas import parse_quota
from dev8.core.resources import PRESETS, resolve_resources
from dev8.core.states import LIVE, ObservedState
from dev8.core.workspace import Workspace
from dev8.sshconfig import HostEntry, pin_host_keys, ssh_argv, write_ssh_config

if TYPE_CHECKING:
    from dev8.service.workspaces import CreateRequest, WorkspaceService

NAME = typer.Argument(..., help="Workspace name: lowercase letters, digits and '-'.")
JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")


def service() -> WorkspaceService:
    """The service, imported on first use: `--help` and `engine` need none of it."""
    from dev8.cli.context import service as build

    return build()


@contextmanager
def _progress(title: str) -> Iterator[callable]:
    """A spinner whose text follows the operation's progress messages (stderr)."""
    started = time.monotonic()
    with Status(title, console=err_console) as status:

        def update(message: str) -> None:
            status.update(f"{title}: {message} [dim]({time.monotonic() - started:.1f} s)[/]")

        yield update


def _parse_pairs(values: list[str], option: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep:
            if option == "--secret" and key in os.environ:
                pairs[key] = os.environ[key]  # --secret NAME takes it from your environment
                continue
            raise InvalidInput(f"{option} {value!r} is not KEY=VALUE")
        pairs[key] = val
    return pairs


def _git_identity() -> dict[str, str]:
    """The host user's git identity, so commits in the workspace carry the same name."""
    import subprocess

    identity = {}
    for key, variable in (("user.name", "GIT_AUTHOR_NAME"), ("user.email", "GIT_AUTHOR_EMAIL")):
        try:
            value = subprocess.run(
                ["git", "config", "--global", key], capture_output=True, text=True, timeout=5
            ).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            value = ""
        if value:
            identity[variable] = value
    return identity


def _idle_seconds(text: str | None) -> int | None:
    """'30m', '2h', '90s', '0' or 'off' (never) as seconds; None when not given."""
    if text is None:
        return None
    from dev8.cli.context import in_server_mode

    if not in_server_mode():
        raise InvalidInput(
            "idle auto-stop is done by `dev8 server`; log in to one (`dev8 login URL`) to use "
            "--idle-timeout"
        )
    value = text.strip().lower()
    if value in ("0", "off", "never"):
        return 0
    units = {"s": 1, "m": 60, "h": 3600}
    number, unit = (value[:-1], value[-1]) if value[-1:] in units else (value, "s")
    if not number.isdigit():
        raise InvalidInput(f"invalid idle timeout {text!r}; use e.g. 30m, 2h or off")
    return int(number) * units[unit]


def _create_request(
    name: str,
    image: str,
    size: str | None,
    cpus: str | None,
    memory: str | None,
    env: list[str],
    secret: list[str],
    ide_port: int | None,
    ssh_port: int | None,
    home_quota: str | None = None,
    workspace_quota: str | None = None,
    idle_timeout: str | None = None,
) -> CreateRequest:
    from dev8.service.workspaces import CreateRequest

    fixed = {role: port for role, port in (("ide", ide_port), ("ssh", ssh_port)) if port}
    quotas = {
        role: parse_quota(value)
        for role, value in (("home", home_quota), ("workspace", workspace_quota))
        if value
    }
    return CreateRequest(
        name=name,
        image=image or workspace_image(),
        resources=resolve_resources(size, cpus, memory),
        env={**_git_identity(), **_parse_pairs(env, "--env")},
        secrets=_parse_pairs(secret, "--secret"),
        host_ports=fixed,
        quotas=quotas,
        idle_timeout_s=_idle_seconds(idle_timeout),
    )


IMAGE_OPT = typer.Option(
    None,
    "--image",
    help="Image to run (default: dev8/workspace:latest, or the tag in DEV8_IMAGE_TAG).",
)
SIZE_OPT = typer.Option(
    None,
    "--size",
    help="Resource preset: "
    + ", ".join(f"{k} ({v.describe()})" for k, v in PRESETS.items())
    + ". Default small.",
)
CPUS_OPT = typer.Option(None, "--cpus", help="CPU limit, overriding the preset (e.g. 1.5).")
MEMORY_OPT = typer.Option(None, "--memory", help="Memory limit, overriding the preset (e.g. 6g).")
ENV_OPT = typer.Option([], "--env", "-e", help="KEY=VALUE environment variable (repeatable).")
IDE_PORT_OPT = typer.Option(
    None,
    "--ide-port",
    min=1,
    max=65535,
    help="Fixed host port for the IDE on 127.0.0.1 (default: a free one, kept for good).",
)
SSH_PORT_OPT = typer.Option(
    None,
    "--ssh-port",
    min=1,
    max=65535,
    help="Fixed host port for SSH on 127.0.0.1 (default: a free one, kept for good).",
)
HOME_QUOTA_OPT = typer.Option(
    None,
    "--home-quota",
    help="Size limit of /home/dev8, e.g. 30g (default 20g). Warned about, not enforced.",
)
WORKSPACE_QUOTA_OPT = typer.Option(
    None,
    "--workspace-quota",
    help="Size limit of /workspace, e.g. 200g (default 100g). Warned about, not enforced.",
)
IDLE_OPT = typer.Option(
    None,
    "--idle-timeout",
    help="Server mode: stop the workspace after this long without SSH or IDE activity "
    "(e.g. 30m, 2h, off; default: the server's, 30m).",
)
SECRET_OPT = typer.Option(
    [],
    "--secret",
    "-s",
    help="KEY=VALUE secret such as GITHUB_TOKEN, or "
    "KEY to take it from your environment (repeatable). Never written to the volumes.",
)


def _print_access(workspace: Workspace) -> None:
    name = workspace.name
    console.print(
        f"  [bold]IDE[/]       {workspace.ide_url}   [dim](password: `dev8 password {name}`)[/]"
    )
    console.print(
        f"  [bold]SSH[/]       dev8 ssh {name}   "
        f"[dim](or `ssh dev8.{name}` after `dev8 config-ssh`)[/]"
    )
    console.print(f"  [bold]Status[/]    dev8 status {name}")


def _pin(workspace: Workspace) -> None:
    """Remember the workspace's SSH host keys, as reported by its agent."""
    status = service().agent_status_of(workspace)
    pin_host_keys(workspace.id, status.get("ssh_host_keys") or [])


def up(
    name: str = NAME,
    image: str | None = IMAGE_OPT,
    size: str | None = SIZE_OPT,
    cpus: str | None = CPUS_OPT,
    memory: str | None = MEMORY_OPT,
    env: list[str] = ENV_OPT,
    secret: list[str] = SECRET_OPT,
    ide_port: int | None = IDE_PORT_OPT,
    ssh_port: int | None = SSH_PORT_OPT,
    home_quota: str | None = HOME_QUOTA_OPT,
    workspace_quota: str | None = WORKSPACE_QUOTA_OPT,
    idle_timeout: str | None = IDLE_OPT,
) -> None:
    """Create the workspace if needed, start it, wait until it is healthy, and print how to
    reach it. The everyday command: safe to run again at any time."""
    request = _create_request(
        name,
        image,
        size,
        cpus,
        memory,
        env,
        secret,
        ide_port,
        ssh_port,
        home_quota,
        workspace_quota,
        idle_timeout,
    )
    started = time.monotonic()
    with _progress(f"Bringing up {name}") as progress:
        workspace = service().up(request, progress)
    _pin(workspace)
    console.print(
        f"[green]✓[/] Workspace [bold]{name}[/] is running "
        f"[dim]({time.monotonic() - started:.1f} s)[/]"
    )
    _print_access(workspace)


def create(
    name: str = NAME,
    image: str | None = IMAGE_OPT,
    size: str | None = SIZE_OPT,
    cpus: str | None = CPUS_OPT,
    memory: str | None = MEMORY_OPT,
    env: list[str] = ENV_OPT,
    secret: list[str] = SECRET_OPT,
    ide_port: int | None = IDE_PORT_OPT,
    ssh_port: int | None = SSH_PORT_OPT,
    home_quota: str | None = HOME_QUOTA_OPT,
    workspace_quota: str | None = WORKSPACE_QUOTA_OPT,
    idle_timeout: str | None = IDLE_OPT,
) -> None:
    """Create a workspace (volumes and container) without starting it."""
    request = _create_request(
        name,
        image,
        size,
        cpus,
        memory,
        env,
        secret,
        ide_port,
        ssh_port,
        home_quota,
        workspace_quota,
        idle_timeout,
    )
    with _progress(f"Creating {name}") as progress:
        workspace = service().create(request, progress)
    console.print(
        f"[green]✓[/] Created [bold]{name}[/] ({workspace.id}); start it with `dev8 start {name}`"
    )


def start(
    name: str = NAME,
    no_wait: bool = typer.Option(
        False, "--no-wait", help="Return once the container runs, without waiting for health."
    ),
) -> None:
    """Start a stopped workspace and wait until it is healthy."""
    started = time.monotonic()
    with _progress(f"Starting {name}") as progress:
        workspace = service().start(name, progress, wait=not no_wait)
    if not no_wait:
        _pin(workspace)
    console.print(
        f"[green]✓[/] {name} is {workspace.observed_state.value} "
        f"[dim]({time.monotonic() - started:.1f} s)[/]"
    )
    _print_access(workspace)


def stop(name: str = NAME) -> None:
    """Stop a workspace. Files, installed packages and settings are kept."""
    with _progress(f"Stopping {name}") as progress:
        service().stop(name, progress)
    console.print(f"[green]✓[/] {name} is stopped")


def restart(name: str = NAME) -> None:
    """Restart a workspace's container and wait until it is healthy."""
    started = time.monotonic()
    with _progress(f"Restarting {name}") as progress:
        service().restart(name, progress)
    console.print(f"[green]✓[/] {name} restarted [dim]({time.monotonic() - started:.1f} s)[/]")


def rebuild(
    name: str = NAME,
    image: str | None = typer.Option(
        None, "--image", help="New image (default: the workspace's image, resolved again)."
    ),
) -> None:
    """Replace the container with a new one from the image, on the same volumes: /home/dev8,
    /workspace and the system volume (SSH host keys) are kept."""
    started = time.monotonic()
    with _progress(f"Rebuilding {name}") as progress:
        workspace = service().rebuild(name, image, progress)
    _pin(workspace)
    console.print(
        f"[green]✓[/] {name} rebuilt on {workspace.image_ref} "
        f"({workspace.image_id[7:19]}) [dim]({time.monotonic() - started:.1f} s)[/]"
    )


def rm(
    name: str = NAME,
    purge: bool = typer.Option(False, "--purge", help="Also destroy the volumes (all data)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Remove a workspace's container. Its volumes survive, and `dev8 up NAME` brings it back
    on them; with --purge the volumes are destroyed too, after confirmation."""
    svc = service()
    if purge:
        volumes = svc.volume_names(name)
        if not yes:
            if not sys.stdin.isatty():
                raise InvalidInput(
                    "--purge destroys data; confirm with --yes when not on a terminal"
                )
            err_console.print(
                f"This destroys all data of [bold]{name}[/]: "
                + (", ".join(volumes) or "no volumes found")
            )
            typer.confirm("Destroy these volumes?", abort=True)
    destroyed = svc.remove(name, purge=purge)
    if purge:
        console.print(
            f"[green]✓[/] Removed {name} and destroyed {len(destroyed)} volume(s)"
            + (f": {', '.join(destroyed)}" if destroyed else "")
        )
    else:
        console.print(
            f"[green]✓[/] Removed {name}'s container; its volumes are kept "
            f"(`dev8 up {name}` brings it back, `dev8 rm --purge {name}` destroys them)"
        )


def ls(as_json: bool = JSON) -> None:
    """List your workspaces with their state as the engine sees it now, and how full their
    volumes are (measured by the agent of a running workspace)."""
    service().ping()
    workspaces = service().list()
    uses = {ws.id: disk_uses(ws, _agent_status(ws)) for ws in workspaces}
    if as_json:
        print_json([{**workspace_dict(ws), "disk": disk_dict(uses[ws.id])} for ws in workspaces])
    elif not workspaces:
        console.print("No workspaces yet. Create one with `dev8 up NAME`.")
    else:
        console.print(workspace_table(workspaces, uses))


def _agent_status(workspace: Workspace) -> dict | None:
    """What the agent of a live workspace reports, or the reason it could not be asked."""
    if workspace.observed_state not in LIVE:
        return None
    try:
        return service().agent_status_of(workspace)
    except Exception as exc:
        return {"error": str(exc)}


def status(name: str = NAME, as_json: bool = JSON) -> None:
    """A workspace's state, ports and resources, plus what its agent reports when running."""
    svc = service()
    svc.ping()
    workspace = svc.get(name)
    agent = _agent_status(workspace)
    uses = disk_uses(workspace, agent)
    if as_json:
        print_json({**workspace_dict(workspace), "agent": agent, "disk": disk_dict(uses)})
        return
    console.print(
        f"[bold]{workspace.name}[/] ({workspace.id})  {state_text(workspace)}"
        + (f"  [dim]{workspace.status_message}[/]" if workspace.status_message else "")
    )
    console.print(f"  image      {workspace.image_ref} ({workspace.image_id[7:19]})")
    console.print(f"  resources  {workspace.resources.describe()}")
    if uses:
        console.print(f"  disk       {', '.join(use_text(use) for use in uses)}")
    if workspace.ports:
        console.print(f"  IDE        {workspace.ide_url}")
        console.print(f"  SSH        127.0.0.1:{workspace.ports.get('ssh')}  (dev8 ssh {name})")
    if agent and "services" in agent:
        for service_name, info in agent["services"].items():
            console.print(
                f"  {service_name:<10} {info['state']}, restarts {info['restarts']}"
                + (f", {info['message']}" if info.get("message") else "")
            )
        packages = agent.get("packages") or {}
        if packages:
            console.print(f"  packages   {_packages_line(packages)}")
        for warning in agent.get("warnings", []):
            console.print(f"  [yellow]warning[/]    {warning}")


def _packages_line(packages: dict) -> str:
    report = packages.get("restore") or {}
    line = f"{packages.get('recorded', 0)} recorded"
    if not report:
        return line
    status = report.get("status", "?")
    took = ""
    if report.get("finished_at") and report.get("started_at"):
        took = f" in {report['finished_at'] - report['started_at']:.1f} s"
    line += f"; last restore {status}{took}"
    if report.get("offline") or report.get("network"):
        offline, network = len(report.get("offline", [])), len(report.get("network", []))
        line += f" ({offline} from cache, {network} from network)"
    if report.get("missing"):
        line += f"; [red]missing: {', '.join(report['missing'])}[/] (retried at next start)"
    return line


def packages(
    name: str = NAME,
    forget: list[str] = typer.Option(
        [], "--forget", help="Stop recording this package (repeatable)."
    ),
    as_json: bool = JSON,
) -> None:
    """System packages you installed with apt that come back after `dev8 rebuild`, and how
    the last restore went. `--forget PKG` drops one from the record."""
    data = local_service("packages", "`dev8 status NAME` shows the package record").packages(
        name, forget or None
    )
    if as_json:
        print_json(data)
        return
    recorded, report = data["recorded"], data.get("restore") or {}
    if forget:
        console.print(f"[green]✓[/] no longer recorded: {', '.join(forget)}")
    if not recorded["packages"]:
        console.print(
            "No system packages recorded yet: `sudo apt install ...` in the workspace records them."
        )
    missing = set(report.get("missing", []))
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("PACKAGE", "VERSION", "STATE"):
        table.add_column(column)
    for package, version in sorted(recorded["packages"].items()):
        held = " (held)" if package in recorded.get("holds", []) else ""
        state = "[red]missing[/]" if package in missing else "installed"
        table.add_row(package, version + held, state)
    if recorded["packages"]:
        console.print(table)
    extras = [
        f"{len(recorded.get('files', {}))} apt source/key file(s)",
        f"{len(recorded.get('conffiles', []))} edited config file(s)",
        f"{len(recorded.get('alternatives', {}))} alternative(s)",
    ]
    console.print("[dim]Also recorded: " + ", ".join(extras) + "[/]")
    if report:
        summary = _packages_line({"recorded": len(recorded["packages"]), "restore": report})
        console.print(f"Last restore: {summary}")
        for error in report.get("errors", []):
            console.print(f"  [red]error[/] {error}")


def history(
    name: str = NAME,
    as_json: bool = JSON,
    limit: int = typer.Option(50, help="How many operations to show."),
) -> None:
    """What happened to a workspace: every operation, who ran it, the result and duration."""
    operations = service().history(name, limit)
    if as_json:
        print_json([operation_dict(op) for op in operations])
    else:
        console.print(history_table(operations))


def logs(
    name: str = NAME,
    follow: bool = typer.Option(False, "--follow", "-f"),
    tail: int | None = typer.Option(None, "--tail", help="Only the last N lines."),
) -> None:
    """The workspace's output: the agent, sshd and code-server."""
    out = sys.stdout.buffer
    for chunk in service().logs(name, follow=follow, tail=tail):
        out.write(chunk)
        out.flush()


def exec_(
    name: str = NAME,
    command: list[str] = typer.Argument(..., help="Command and arguments, after --."),
    root: bool = typer.Option(False, "--root", help="Run as root instead of dev8."),
) -> None:
    """Run a command in the workspace as dev8 (in /workspace), e.g. `dev8 exec NAME -- ls -la`.
    The exit code is the command's. Local mode only (in server mode: `dev8 ssh NAME -- CMD`)."""
    svc = local_service("exec", "use `dev8 ssh NAME -- CMD`")
    workspace = svc.get(name)
    _require_running(workspace)
    user = "root" if root else "dev8"
    docker = shutil.which("docker")
    if docker:
        flags = ["-i", "-t"] if sys.stdin.isatty() and sys.stdout.isatty() else ["-i"]
        home = "/root" if root else "/home/dev8"
        os.execv(
            docker,
            [
                docker,
                "exec",
                *flags,
                "-u",
                user,
                "-w",
                "/workspace",
                "-e",
                f"HOME={home}",
                f"dev8-{workspace.id}",
                *command,
            ],
        )
    result = svc.provider.exec(workspace.id, command, user=user, workdir="/workspace")
    sys.stdout.buffer.write(result.output)
    raise typer.Exit(result.exit_code)


def _require_running(workspace: Workspace) -> None:
    from dev8.service.workspaces import require_live

    require_live(workspace)


def ssh(
    name: str = NAME,
    command: list[str] | None = typer.Argument(
        None, help="Command to run instead of a shell, after --."
    ),
) -> None:
    """Open an SSH session to the workspace as dev8 (with your dev8 key, host key verified)."""
    svc = service()
    workspace = svc.get(name)
    _require_running(workspace)
    _pin(workspace)
    argv = ssh_argv(workspace.id, workspace.ports["ssh"], command or [])
    os.execvp(argv[0], argv)


def url(name: str = NAME) -> None:
    """Print the workspace's IDE address (code-server)."""
    workspace = service().get(name)
    _require_running(workspace)
    typer.echo(workspace.ide_url)


def password(name: str = NAME) -> None:
    """Print the password of the workspace's IDE."""
    typer.echo(service().ide_password(name))


def config_ssh() -> None:
    """Write a `Host dev8.NAME` entry per workspace to an Include'd file and make
    ~/.ssh/config include it, so `ssh dev8.NAME` and VS Code Remote-SSH work. Your own
    entries in ~/.ssh/config are never changed; rerun after creating workspaces."""
    workspaces = service().records()
    dev8_command = shutil.which("dev8") or f"{sys.executable} -m dev8"
    hosts_file, user_config = write_ssh_config(
        [HostEntry(ws.name, ws.id) for ws in workspaces], dev8_command
    )
    console.print(
        f"[green]✓[/] {len(workspaces)} host(s) in {hosts_file}, included from {user_config}"
    )
    for ws in workspaces:
        console.print(f"  ssh dev8.{ws.name}")


def ssh_proxy(name: str = NAME) -> None:
    """(Used by `ssh dev8.NAME`.) Start the workspace if needed, then relay SSH over stdio."""
    from dev8.cli.relay import relay_stdio

    svc = service()
    workspace = svc.get(name)
    if workspace.observed_state is not ObservedState.RUNNING:
        err_console.print(f"dev8: starting {name}...")
        workspace = svc.start(name)
    _pin(workspace)
    relay_stdio("127.0.0.1", workspace.ports["ssh"])


def register(app: typer.Typer) -> None:
    for command in (
        up,
        create,
        start,
        stop,
        restart,
        rebuild,
        rm,
        ls,
        status,
        history,
        logs,
        ssh,
        url,
        password,
        packages,
    ):
        app.command()(command)
    app.command("exec")(exec_)
    app.command("config-ssh")(config_ssh)
    app.command("ssh-proxy", hidden=True)(ssh_proxy)
