"""`dev8 ls` and `dev8 status` without Typer, and ``context.looked``: the service over the
read-only stand-ins answers while what it observes is what is recorded, and the full
service takes over (and records) as soon as something changed or the stand-ins cannot
answer. On ``FakeProvider`` and ``FakeAgent`` in place of the engine's socket and the
agents (no engine)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.fakes import FakeAgent, FakeProvider

from dev8.cli import context
from dev8.cli.agent_reports import OneReportPerAgent
from dev8.cli.main import _looked_quickly
from dev8.core.errors import ProviderError
from dev8.core.states import ContainerState, ObservedState
from dev8.providers.docker.reads import EngineReader
from dev8.service.agent_client import AgentClient
from dev8.service.workspaces import CreateRequest, WorkspaceService
from dev8.store.readonly import ReadOnlyStore
from dev8.store.store import Store

IMAGE = "dev8/workspace:test"


@pytest.fixture
def provider() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
def full(dev8_home: Path, provider: FakeProvider, monkeypatch) -> WorkspaceService:
    """The full service on the data directory's database, as `context.workspaces()`."""
    monkeypatch.delenv("DEV8_SERVER_URL", raising=False)
    monkeypatch.delenv("DEV8_PROVIDER", raising=False)
    service = WorkspaceService(
        store=Store.open_sqlite(dev8_home / "dev8.db"),
        provider=provider,  # type: ignore[arg-type]
        owner="alice",
        agent=FakeAgent(),  # type: ignore[arg-type]
    )
    monkeypatch.setattr(context, "workspaces", lambda: service)
    return service


def read_only(dev8_home: Path, provider: object, monkeypatch) -> None:
    """``context._read_only`` over ``provider`` in place of ``EngineReader``."""

    def build(_reader: object) -> WorkspaceService:
        return WorkspaceService(
            store=ReadOnlyStore(dev8_home / "dev8.db"),  # type: ignore[arg-type]
            provider=provider,  # type: ignore[arg-type]
            owner="alice",
            agent=FakeAgent(),  # type: ignore[arg-type]
        )

    monkeypatch.setattr(context, "_read_only", build)


def listed_by(backend) -> tuple[object, dict[str, ObservedState]]:
    return backend, {ws.name: ws.observed_state for ws in backend.list()}


def test_the_read_only_service_answers_while_nothing_changed(
    dev8_home, full, provider, monkeypatch
):
    for name in ("a", "b"):
        full.create(CreateRequest(name=name, image=IMAGE))
    full.start("a")
    full.list()  # what the engine says is recorded
    read_only(dev8_home, provider, monkeypatch)

    backend, states = context.looked(listed_by)

    assert backend is not full
    assert states == {"a": ObservedState.RUNNING, "b": ObservedState.STOPPED}


def test_a_change_is_recorded_by_the_full_service(dev8_home, full, provider, monkeypatch):
    workspace = full.create(CreateRequest(name="a", image=IMAGE))
    full.start("a")
    full.list()
    read_only(dev8_home, provider, monkeypatch)
    provider.containers[workspace.id].state = ContainerState.EXITED  # stopped outside dev8

    backend, states = context.looked(listed_by)

    assert backend is full
    assert states == {"a": ObservedState.STOPPED}
    assert full.find("a").observed_state is ObservedState.STOPPED  # recorded
    assert context.looked(listed_by)[0] is not full  # and read quickly again


def test_an_engine_the_reader_cannot_reach_is_left_to_the_full_service(
    dev8_home, full, monkeypatch, tmp_path
):
    full.create(CreateRequest(name="a", image=IMAGE))
    read_only(dev8_home, EngineReader(str(tmp_path / "no.sock")), monkeypatch)

    assert context.looked(listed_by)[0] is full


def test_a_database_to_create_is_left_to_the_full_service(dev8_home, provider, monkeypatch):
    read_only(dev8_home, provider, monkeypatch)
    monkeypatch.delenv("DEV8_SERVER_URL", raising=False)
    sentinel = object()
    monkeypatch.setattr(context, "workspaces", lambda: sentinel)

    assert context.looked(lambda backend: backend) is sentinel


@pytest.mark.parametrize(
    "command,args,call",
    [
        ("ls", [], ("ls", False)),
        ("ls", ["--json"], ("ls", True)),
        ("status", ["web"], ("status", "web", False)),
        ("status", ["--json", "web"], ("status", "web", True)),
        ("ls", ["--help"], None),
        ("ls", ["web"], None),
        ("status", [], None),
        ("status", ["-h"], None),
        ("status", ["a", "b"], None),
    ],
)
def test_only_the_plain_forms_skip_typer(command, args, call, monkeypatch):
    calls: list[tuple] = []
    monkeypatch.setattr("dev8.cli.looking.show_list", lambda j: calls.append(("ls", j)))
    monkeypatch.setattr("dev8.cli.looking.show_status", lambda n, j: calls.append(("status", n, j)))

    assert _looked_quickly(command, args) is (call is not None)
    assert calls == ([call] if call else [])


def test_each_agent_is_asked_for_its_report_once(monkeypatch):
    """``OneReportPerAgent`` over stand-ins of the HTTP requests (``AgentClient``'s own
    ``health`` and ``status``): health comes from the report, which is asked for once;
    an agent without a recorded token, or that does not answer ``/status``, is asked
    ``/health``."""
    asked: list[tuple[str, str | None]] = []

    def status(self, agent_url, token):
        asked.append(("/status", agent_url))
        if agent_url == "http://down":
            raise ProviderError("the agent did not answer")
        return {"health": "code-server: starting", "disk": {}}

    def health(self, agent_url):
        asked.append(("/health", agent_url))
        return "the agent is not answering yet"

    monkeypatch.setattr(AgentClient, "status", status)
    monkeypatch.setattr(AgentClient, "health", health)
    agent = OneReportPerAgent({"http://a": "t", "http://down": "t"})

    assert agent.health("http://a") == "code-server: starting"
    assert agent.status("http://a", "t") == {"health": "code-server: starting", "disk": {}}
    assert agent.health("http://down") == "the agent is not answering yet"
    assert agent.health("http://unknown") == "the agent is not answering yet"
    assert asked == [
        ("/status", "http://a"),
        ("/status", "http://down"),
        ("/health", "http://down"),
        ("/health", "http://unknown"),
    ]
