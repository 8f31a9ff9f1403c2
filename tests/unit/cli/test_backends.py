"""The CLI's backend is chosen once, from the login: the local services in local mode, the
SDK-backed ones after `dev8 login`; one-mode commands refuse in the other in one line; and
every backend has the methods, with the parameters, that ``dev8.cli.backends`` declares."""

from __future__ import annotations

import inspect

import pytest
from tests.fakes import FakeProvider

from dev8.cli import context
from dev8.cli.backends import (
    AccessBackend,
    BackupBackend,
    ByteStream,
    KeepsBackups,
    SnapshotBackend,
    WorkspaceBackend,
)
from dev8.cli.local_access import LocalAccess
from dev8.cli.login import Login, save_login
from dev8.cli.relay import SocketStream
from dev8.cli.remote import RemoteWorkspaces
from dev8.cli.remote_backups import RemoteBackups, RemoteSnapshots
from dev8.client.tunnel import Tunnel
from dev8.core.errors import InvalidInput
from dev8.service.backups import BackupService
from dev8.service.snapshots import SnapshotService
from dev8.service.workspaces import WorkspaceService


@pytest.fixture(autouse=True)
def fresh(monkeypatch: pytest.MonkeyPatch):
    """No login from the environment, a fake provider, and nothing cached between tests."""
    monkeypatch.delenv("DEV8_SERVER_URL", raising=False)
    monkeypatch.delenv("DEV8_TOKEN", raising=False)
    monkeypatch.setattr("dev8.providers.registry.make_provider", lambda: FakeProvider())
    for cached in (context.workspaces, context._local, context.remote):
        cached.cache_clear()
    yield
    for cached in (context.workspaces, context._local, context.remote):
        cached.cache_clear()


def log_in() -> None:
    save_login(Login(url="http://127.0.0.1:9", token="dev8_x", user="alice"))


def test_local_mode_uses_the_services():
    assert isinstance(context.workspaces(), WorkspaceService)
    assert isinstance(context.backups(), BackupService)
    assert isinstance(context.snapshots(), SnapshotService)
    assert context.workspaces() is context.workspaces()  # chosen once
    assert context.local_only("exec", "use ssh") is context.workspaces()
    assert isinstance(context.access(), LocalAccess)
    assert context.access().service is context.workspaces()  # type: ignore[attr-defined]


def test_server_mode_uses_the_sdk():
    log_in()
    workspaces = context.workspaces()
    assert isinstance(workspaces, RemoteWorkspaces) and workspaces.owner == "alice"
    assert isinstance(context.backups(), RemoteBackups)
    assert isinstance(context.backups(), KeepsBackups)
    assert isinstance(context.snapshots(), RemoteSnapshots)
    assert context.access() is workspaces  # streams are tunnels through the same server


def test_the_environment_selects_a_server_too(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DEV8_SERVER_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("DEV8_TOKEN", "dev8_x")
    assert context.in_server_mode()


def test_one_mode_commands_refuse_in_the_other_in_one_line():
    with pytest.raises(InvalidInput, match="needs a dev8 server: log in"):
        context.server_only("`dev8 backups`", "in local mode the archives are files")
    log_in()
    with pytest.raises(InvalidInput, match=r"^`dev8 exec` works in local mode only; in server"):
        context.local_only("exec", "use `dev8 ssh NAME -- CMD`")


def test_options_one_backend_cannot_honour_are_refused_by_it():
    log_in()
    with pytest.raises(InvalidInput, match="--as works in local mode only"):
        context.snapshots().restore("web", "latest", as_name="copy")
    with pytest.raises(InvalidInput, match="--as works in local mode only"):
        context.backups().restore("web", [], as_name="copy")
    with pytest.raises(InvalidInput, match="--follow"):
        next(iter(context.workspaces().logs("web", follow=True)))


def declared(protocol: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in vars(protocol).items()
        if inspect.isfunction(member) and not name.startswith("_")
    }


@pytest.mark.parametrize(
    "protocol,implementations",
    [
        (WorkspaceBackend, [WorkspaceService, RemoteWorkspaces]),
        (BackupBackend, [BackupService, RemoteBackups]),
        (SnapshotBackend, [SnapshotService, RemoteSnapshots]),
        (AccessBackend, [LocalAccess, RemoteWorkspaces]),
        (ByteStream, [SocketStream, Tunnel]),
    ],
)
def test_every_backend_takes_the_declared_parameters(protocol, implementations):
    """What mypy checks statically, at run time too: same names, same kinds, defaults kept;
    an implementation may add parameters after them, with defaults."""
    for name, wanted in declared(protocol).items():
        for implementation in implementations:
            got = inspect.signature(getattr(implementation, name)).parameters
            for parameter in wanted.parameters.values():
                assert parameter.name in got, f"{implementation.__name__}.{name}"
                assert got[parameter.name].kind == parameter.kind, (implementation, name)
                has_default = got[parameter.name].default is not inspect.Parameter.empty
                assert has_default == (parameter.default is not inspect.Parameter.empty)
