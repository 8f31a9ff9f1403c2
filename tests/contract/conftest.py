"""The providers the contract suite runs against: the in-memory fake (tests/fakes.py) and
the real Docker provider on the real engine with the workspace image (marked ``engine``).
A new backend joins by adding a parameter here."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from dev8.core.errors import Dev8Error
from dev8.core.images import workspace_image
from dev8.core.naming import new_workspace_id
from dev8.core.resources import Resources
from dev8.providers.base import Provider, WorkspaceSpec
from tests.fakes import FakeProvider

OWNER = f"contract-{secrets.token_hex(3)}"


@dataclass
class Backend:
    provider: Provider
    image: str  # a reference the backend can run
    made: list[str] = field(default_factory=list)  # workspace ids, removed afterwards

    def spec(self, image: str | None = None) -> WorkspaceSpec:
        self.made.append(new_workspace_id())
        return WorkspaceSpec(
            workspace_id=self.made[-1],
            name=f"c{secrets.token_hex(3)}",
            owner=OWNER,
            image=image or self.image,
            resources=Resources(1, 512),
            env={"DEV8_AGENT_TOKEN": secrets.token_urlsafe(16), "CODE_SERVER_PASSWORD": "x"},
        )


def _fake() -> Iterator[Backend]:
    yield Backend(FakeProvider(), "dev8/workspace:test")


def _docker() -> Iterator[Backend]:
    from dev8.providers.docker.provider import DockerProvider

    provider = DockerProvider()
    try:
        provider.image_id(workspace_image())
    except Dev8Error as exc:
        pytest.fail(f"the Docker contract needs {workspace_image()}: `dev8 image build` ({exc})")
    backend = Backend(provider, workspace_image())
    yield backend
    for workspace_id in backend.made:
        provider.remove(workspace_id)
        provider.remove_volumes(workspace_id)


@pytest.fixture(
    params=[
        pytest.param(_fake, id="fake"),
        pytest.param(_docker, id="docker", marks=pytest.mark.engine),
    ]
)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    yield from request.param()
