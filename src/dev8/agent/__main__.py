"""Agent entry point: prepare the home, start the services, serve HTTP, stop cleanly."""

from __future__ import annotations

import grp
import logging
import os
import pwd
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from dev8.agent import VERSION, fsinfo, home, state, volume_swap
from dev8.agent.activity import Activity
from dev8.agent.config import AgentConfig, from_environment, parse_public_keys
from dev8.agent.disk import DiskUsage, motd_text
from dev8.agent.dotfiles import Dotfiles, Setup
from dev8.agent.httpapi import AgentHTTPServer
from dev8.agent.motd import Motd
from dev8.agent.packages.layout import Layout
from dev8.agent.packages.phase import PackageRestore
from dev8.agent.probes import http_ok, ssh_banner
from dev8.agent.relay import Relays
from dev8.agent.supervisor import ServiceSpec, Supervisor
from dev8.agent.sync import start_sync
from dev8.core.dotfiles import DOTFILES_REPO, validate_dotfiles_repo
from dev8.core.errors import InvalidInput

log = logging.getLogger("dev8.agent")
STOP_GRACE_S = 5.0  # well within Docker's default 10 s stop timeout


def user_environment(config: AgentConfig) -> dict[str, str]:
    entry = pwd.getpwuid(config.uid)
    return {
        **config.child_env,
        "HOME": entry.pw_dir,
        "USER": entry.pw_name,
        "LOGNAME": entry.pw_name,
        "SHELL": entry.pw_shell,
    }


def code_server_config(config: AgentConfig) -> str:
    """code-server's settings: on every interface with its password (local mode), or on the
    loopback with none, reached only through the agent's relay after the server signed the
    user in (loopback-only mode)."""
    if config.loopback_only:
        return f"bind-addr: 127.0.0.1:{config.ide_port}\nauth: none\ncert: false\n"
    return f"bind-addr: 0.0.0.0:{config.ide_port}\nauth: password\ncert: false\n"


def sshd_argv(config: AgentConfig, host_keys: list[Path]) -> list[str]:
    """sshd in the foreground, logging to stderr, with the persistent host keys; the port
    comes from the image's sshd_config, the address from the mode."""
    argv = [config.sshd, "-D", "-e"]
    for key in host_keys:
        argv += ["-h", str(key)]
    if config.loopback_only:
        argv += ["-o", f"ListenAddress=127.0.0.1:{config.ssh_port}"]
    return argv


def _write_code_server_config(config: AgentConfig) -> str:
    """code-server reads this instead of ~/.config/code-server/config.yaml, which would
    otherwise be created on the home volume with a password in it."""
    path = config.run_dir / "code-server.yaml"
    path.write_text(code_server_config(config))
    return str(path)


def service_specs(config: AgentConfig, password: str) -> list[ServiceSpec]:
    host_keys = home.ensure_host_keys(config.state_dir / "ssh")
    groups = os.getgrouplist(config.user, config.gid)
    code_server_argv = [
        config.code_server,
        "--config",
        _write_code_server_config(config),
        "--disable-telemetry",
        "--disable-update-check",
        str(config.workspace),
    ]
    # With auth: none the password would only be one more copy of a secret.
    ide_secret = {} if config.loopback_only else {"PASSWORD": password}
    return [
        ServiceSpec(
            name="sshd",
            argv=sshd_argv(config, host_keys),
            env=dict(config.child_env),
            probe=lambda: ssh_banner(config.ssh_port),
            startup_grace=10.0,
            quiet=lambda line: "by 127.0.0.1 port" in line,
        ),
        ServiceSpec(
            name="code-server",
            argv=code_server_argv,
            env={**user_environment(config), **ide_secret},
            user=config.uid,
            group=config.gid,
            extra_groups=groups,
            cwd=str(config.workspace),
            probe=lambda: http_ok(config.ide_port, "/healthz"),
            startup_grace=30.0,
        ),
    ]


class Agent:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.started_at = time.time()
        self.password = config.code_server_password or secrets.token_urlsafe(18)
        self.warnings: list[str] = []
        self.activity = Activity(
            config.ssh_port, config.ide_port, config.home / ".local/share/code-server/heartbeat"
        )
        self.motd = Motd(config.run_dir / "motd")
        self.disk = DiskUsage(
            config.volumes,
            interval=config.disk_interval,
            quotas=config.quotas,
            on_warnings=lambda warnings: self.motd.set("quota", motd_text(warnings)),
        )
        self.packages = PackageRestore(Layout(config.state_dir / "packages"), self.motd)
        self.supervisor: Supervisor | None = None
        self.relays = Relays()
        self.dotfiles = Dotfiles(dotfiles_setup(config))
        self._keys_lock = threading.Lock()
        self.sync = start_sync(config, lambda text: self.motd.set("sync", text))

    def health(self) -> str | None:
        restoring = (self.sync and self.sync.restoring) or self.packages.progress()
        if restoring:
            return restoring
        return self.supervisor.health() if self.supervisor else "starting"

    def status(self) -> dict:
        self.activity.sample()
        services = self.supervisor.services if self.supervisor else {}
        return {
            "agent": {
                "version": VERSION,
                "started_at": self.started_at,
                "uptime_s": round(time.time() - self.started_at, 1),
                "environment_id": self.config.environment_id,
                "pid": os.getpid(),
            },
            "health": self.health(),
            "services": {name: s.status.as_dict() for name, s in services.items()},
            "activity": self.activity.snapshot(),
            "disk": self.disk.snapshot(),
            "ssh_host_keys": home.host_public_keys(self.config.state_dir / "ssh"),
            "warnings": self.warnings + self.disk.warnings(),
            "packages": self.packages.snapshot(),
            "password_generated": not self.config.code_server_password,
            "loopback_only": self.config.loopback_only,
            "relays_open": self.relays.open,
            "dotfiles": self.dotfiles.status(),
            "filesystems": fsinfo.filesystem_types(self.watched_paths()),
            "sync": self.sync.snapshot() if self.sync else None,
        }

    def watched_paths(self) -> dict[str, Path]:
        """The trees whose filesystem matters: the home, /workspace and their shares."""
        paths = list(self.config.volumes.values())
        if self.sync:
            paths += [self.sync.settings.root / name for name in self.sync.settings.trees]
        return {str(path): path for path in paths}

    def _wait_or_stop(self, stop: threading.Event, limit: float) -> bool:
        """Wait for the restore (at most ``limit`` s); False if asked to stop meanwhile."""
        deadline = time.monotonic() + limit
        while not self.packages.done.is_set() and time.monotonic() < deadline:
            if stop.wait(0.2):
                return False
        self.packages.release()
        return True

    def set_ssh_keys(self, text: str) -> int:
        """The owner's keys as they are now (sshd reads the file at each login)."""
        keys = parse_public_keys(text)
        with self._keys_lock:  # one writer of the file at a time
            home.write_authorized_keys(self.config, keys)
        return len(keys)

    def run(self) -> int:
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        http = AgentHTTPServer(
            self.config.agent_port,
            self.config.agent_token,
            self.health,
            self.status,
            self.relays,
            self.set_ssh_keys,
            self.sync.sync_now if self.sync else None,
        )
        threading.Thread(target=http.serve_forever, name="http", daemon=True).start()
        log.info("dev8 agent %s answering on port %d", VERSION, self.config.agent_port)
        # A synced home comes back from its share first: it holds the state placed next.
        self.warnings = self.sync.restore_all() if self.sync else []
        # A restore interrupted in the volumes is settled before the state is placed: the
        # home may bring back a state kept there (a seed workspace's, restored into dev8's).
        self.warnings += recover_restores(self.config)
        self.warnings += place_state(self.config, home_synced=self.sync is not None)
        home.prepare(self.config)
        self.warnings += self.filesystem_warnings()
        for warning in self.warnings:
            log.warning("%s", warning)
        # Packages come back before anyone can log in, but never hold the start hostage.
        self.packages.start()
        if self._wait_or_stop(stop, self.config.restore_timeout):
            self.supervisor = Supervisor(service_specs(self.config, self.password))
            self.supervisor.start()
            self.dotfiles.start()  # in the background: never delays the services
            threading.Thread(target=self.disk.run, args=(stop,), name="disk", daemon=True).start()
            if self.sync:
                self.sync.start(stop)
            while not stop.wait(10.0):
                self.activity.sample()
            log.info("stopping services")
            self.dotfiles.stop()
            self.supervisor.stop(grace=STOP_GRACE_S)
            if self.sync:
                self.sync.final()
        # No http.shutdown(): it waits for the serving loop's next poll (up to half a second of
        # every stop and restart), and the daemon thread ends with the process anyway.
        log.info("stopped")
        return 0

    def filesystem_warnings(self) -> list[str]:
        home_type = fsinfo.filesystem_types({"home": self.config.home})["home"]
        warning = fsinfo.smb_home_warning(self.config.home, home_type)
        self.motd.set("filesystem", warning)
        return [warning] if warning else []


def dotfiles_setup(config: AgentConfig) -> Setup:
    """The dotfiles repository the service chose (none if it is not a valid URL)."""
    try:
        repo = validate_dotfiles_repo(config.child_env.get(DOTFILES_REPO, ""))
    except InvalidInput as exc:
        log.warning("%s", exc)
        repo = ""
    return Setup(
        repo=repo,
        state_dir=config.state_dir,
        run_dir=config.run_dir,
        uid=config.uid,
        gid=config.gid,
        environment=lambda: user_environment(config),
    )


def place_state(config: AgentConfig, home_synced: bool) -> list[str]:
    try:
        return state.place_state(config.state_dir, config.home, home_synced)
    except (OSError, subprocess.CalledProcessError) as exc:
        return [f"cannot place the system state {config.state_dir}: {exc}"]


def recover_restores(config: AgentConfig) -> list[str]:
    """Settle a restore whose swap was interrupted, before anything uses the volumes: all
    its volumes rolled back, or all forward once it was committed."""
    roots = {**config.volumes, "system": config.state_dir}
    try:
        outcomes = volume_swap.recover(roots, keep_staging=True)
    except (OSError, volume_swap.SwapError) as exc:
        return [f"cannot settle an interrupted restore: {exc}"]
    warnings = []
    for name, outcome in outcomes.items():
        if outcome.startswith(("rolled back", "finished", "left alone", "the ")):
            log.warning("%s: %s", roots[name], outcome)
            warnings.append(f"{roots[name]}: {outcome}")
    return warnings


def main() -> int:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stdout,
        format="%(asctime)s dev8-agent %(levelname)s %(message)s",
    )
    if os.geteuid() != 0:
        log.error("the agent must run as root (it starts sshd and drops to the user for the IDE)")
        return 1
    config = from_environment(os.environ)
    try:
        grp.getgrgid(config.gid)
        pwd.getpwuid(config.uid)
    except KeyError:
        log.error("user %s (UID %d) does not exist in this image", config.user, config.uid)
        return 1
    return Agent(config).run()


if __name__ == "__main__":
    sys.exit(main())
