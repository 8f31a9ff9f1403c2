"""A workspace on the ACI provider end to end, its groups run for real: the ARM stand-in
(``armstandin``: not Azure, no ARM emulator exists) runs each container group as a container
of the workspace image on the local Docker engine (``DockerRunner``), with the environment
the provider sent and a Docker volume per share. The provider, the SDK and HTTPS are real.

What it shows: the agent of a new group becomes healthy at the address the provider reports;
what the user writes in the home (a file and a symbolic link: POSIX, on the group's own disk)
is synced to the share at the stop (the group deleted: SIGTERM) and is back in the next
group; commands run through the provider's exec (ACI's exec WebSocket, which the stand-in
joins to a terminal in the container), with their output and exit status. Not shown here:
SMB (the share is a local volume), Azure."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import httpx
import pytest

from dev8.core.images import workspace_image
from dev8.core.naming import new_workspace_id
from dev8.core.resources import Resources
from dev8.providers.aci.provider import AciProvider
from dev8.providers.base import WorkspaceSpec
from tests.integration.aci.armstandin import DockerRunner
from tests.integration.aci.standin import AciStandIn, aci_standin

pytestmark = pytest.mark.engine
HEALTHY_WITHIN_S = 180.0


@pytest.fixture
def azure() -> Iterator[tuple[AciStandIn, DockerRunner]]:
    runner = DockerRunner()
    try:
        with aci_standin(runner) as standin:
            yield standin, runner
    finally:
        runner.clean()


def _spec() -> WorkspaceSpec:
    """A relayed workspace of the local workspace image, the smallest size."""
    return WorkspaceSpec(
        workspace_id=new_workspace_id(),
        name=f"e2e{secrets.token_hex(2)}",
        owner="alice",
        image=workspace_image(),
        resources=Resources(1, 1024),
        env={"DEV8_AGENT_TOKEN": secrets.token_urlsafe(16), "CODE_SERVER_PASSWORD": "x"},
        published=("agent",),
    )


def _wait_healthy(agent_url: str) -> None:
    deadline = time.monotonic() + HEALTHY_WITHIN_S
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{agent_url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"the agent at {agent_url} was not healthy in {HEALTHY_WITHIN_S} s")


def _in_workspace(provider: AciProvider, workspace_id: str, script: str) -> str:
    """Run ``script`` as the user through the provider's exec (ACI's exec WebSocket, joined
    by the stand-in to a terminal in the container), as ``dev8 exec`` would."""
    result = provider.exec(workspace_id, ["bash", "-lc", script])
    assert result.exit_code == 0, result.output.decode(errors="replace")
    return result.output.decode()


def test_data_written_before_a_stop_is_there_after_the_next_start(azure):
    standin, runner = azure
    spec = _spec()
    provider = standin.provider
    provider.create(spec)
    try:
        first = provider.start(spec.workspace_id)
        assert first.agent_url
        _wait_healthy(first.agent_url)
        note = secrets.token_hex(8)
        _in_workspace(
            provider,
            spec.workspace_id,
            f"echo {note} > ~/note.txt && ln -s note.txt ~/link && mkdir -p /workspace/p "
            f"&& echo {note} > /workspace/p/f",
        )
        provider.stop(spec.workspace_id)
        assert runner.client.containers.list(filters={"label": runner.LABEL}) == []
        second = provider.start(spec.workspace_id)
        assert second.agent_url  # read again from Azure (Docker may hand out the same one)
        _wait_healthy(second.agent_url)
        seen = _in_workspace(
            provider,
            spec.workspace_id,
            "cat ~/note.txt; readlink ~/link; cat /workspace/p/f",
        )
        assert seen.split() == [note, "note.txt", note]
    finally:
        provider.remove(spec.workspace_id)
        provider.remove_volumes(spec.workspace_id)


def test_exec_gives_the_output_and_the_exit_status(azure):
    standin, _runner = azure
    spec = _spec()
    provider = standin.provider
    provider.create(spec)
    try:
        provider.start(spec.workspace_id)
        who = provider.exec(
            spec.workspace_id, ["sh", "-c", "id -un; pwd; printf 'a\\0b'"], workdir="/workspace"
        )
        assert who.exit_code == 0 and who.output == b"dev8\n/workspace\na\0b"
        failed = provider.exec(spec.workspace_id, ["sh", "-c", "echo no >&2; exit 3"])
        assert (failed.exit_code, failed.output) == (3, b"no\n")
        root = provider.exec(spec.workspace_id, ["id", "-u"], user="root")
        assert root.output.strip() == b"0"
    finally:
        provider.remove(spec.workspace_id)
        provider.remove_volumes(spec.workspace_id)
