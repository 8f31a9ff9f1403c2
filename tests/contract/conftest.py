"""The providers the contract suite runs against: the in-memory fake (tests/fakes.py), the
real Docker provider on the real engine with the workspace image (marked ``engine``), and the
Kubernetes provider over real HTTP against a Kubernetes API mock server with a stand-in
kubelet (``tests.integration.kubernetes.apimock``; API mock: no real cluster), and the ACI
provider over real HTTPS against an Azure Resource Manager stand-in
(``tests.integration.aci.armstandin``; no ARM emulator exists: not Azure). A new backend
joins by adding a parameter here."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from dev8.core.errors import Dev8Error
from dev8.core.images import workspace_image
from dev8.core.naming import LABEL_WORKSPACE_ID, new_workspace_id
from dev8.core.resources import Resources
from dev8.providers.base import PORTS, Provider, WorkspaceSpec
from tests.fakes import FakeProvider

OWNER = f"contract-{secrets.token_hex(3)}"


@dataclass
class Backend:
    provider: Provider
    image: str  # a reference the backend can run
    # What of a workspace, volumes aside, the backend still holds (containers, networks...),
    # looked up behind the provider's back.
    leftovers: Callable[[str], set[str]]
    made: list[str] = field(default_factory=list)  # workspace ids, removed afterwards
    # Whether ``image_id`` knows if an image is there. A cluster's nodes pull an image when
    # a Pod starts, and the API cannot say beforehand whether they can.
    resolves_images: bool = True

    def spec(
        self, image: str | None = None, published: tuple[str, ...] = tuple(PORTS)
    ) -> WorkspaceSpec:
        self.made.append(new_workspace_id())
        return WorkspaceSpec(
            workspace_id=self.made[-1],
            name=f"c{secrets.token_hex(3)}",
            owner=OWNER,
            image=image or self.image,
            resources=Resources(1, 512),
            env={"DEV8_AGENT_TOKEN": secrets.token_urlsafe(16), "CODE_SERVER_PASSWORD": "x"},
            published=published,
        )


def _fake() -> Iterator[Backend]:
    provider = FakeProvider()
    yield Backend(provider, "dev8/workspace:test", provider.leftovers)


def _docker() -> Iterator[Backend]:
    from dev8.providers.docker.provider import DockerProvider

    provider = DockerProvider()
    try:
        provider.image_id(workspace_image())
    except Dev8Error as exc:
        pytest.fail(f"the Docker contract needs {workspace_image()}: `dev8 image build` ({exc})")

    def leftovers(workspace_id: str) -> set[str]:
        label = {"label": f"{LABEL_WORKSPACE_ID}={workspace_id}"}
        containers = provider.client.containers.list(all=True, filters=label)
        networks = provider.client.networks.list(filters=label)
        return {f"container {c.name}" for c in containers} | {f"network {n.name}" for n in networks}

    backend = Backend(provider, workspace_image(), leftovers)
    yield backend
    for workspace_id in backend.made:
        provider.remove(workspace_id)
        provider.remove_volumes(workspace_id)


def _kubernetes() -> Iterator[Backend]:
    from tests.integration.kubernetes.apimock import mock_cluster

    with mock_cluster() as cluster:
        backend = Backend(
            cluster.provider,
            "registry.test/dev8/workspace:contract",
            cluster.leftovers,
            resolves_images=False,
        )
        yield backend
        for workspace_id in backend.made:
            cluster.provider.remove(workspace_id)
            cluster.provider.remove_volumes(workspace_id)


def _aci() -> Iterator[Backend]:
    from tests.integration.aci.standin import aci_standin

    with aci_standin() as azure:
        backend = Backend(
            azure.provider,
            "dev8registry.azurecr.io/dev8-workspace:contract",
            azure.leftovers,
            resolves_images=False,
        )
        yield backend
        for workspace_id in backend.made:
            azure.provider.remove(workspace_id)
            azure.provider.remove_volumes(workspace_id)


@pytest.fixture(
    params=[
        pytest.param(_fake, id="fake"),
        pytest.param(_docker, id="docker", marks=pytest.mark.engine),
        pytest.param(_kubernetes, id="kubernetes"),
        pytest.param(_aci, id="aci"),
    ]
)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    yield from request.param()
