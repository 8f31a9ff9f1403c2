"""A workspace on the ACI provider end to end, its groups run for real: the ARM stand-in
(``armstandin``: not Azure, no ARM emulator exists) runs each container group as a container
of the workspace image on the local Docker engine (``DockerRunner``), with the environment
the provider sent and a Docker volume per share. The provider, the SDK and HTTPS are real.

What it shows: the agent of a new group becomes healthy at the address the provider reports;
what the user writes in the home (a file and a symbolic link: POSIX, on the group's own disk)
is synced to the share at the stop (the group deleted: SIGTERM) and is back in the next
group. Not shown here: SMB (the share is a local volume), Azure."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import httpx
import pytest

from dev8.core.images import workspace_image
from dev8.core.naming import new_workspace_id
from dev8.core.resources import Resources
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


def _in_workspace(runner: DockerRunner, workspace_id: str, script: str) -> str:
    """Run ``script`` as the user, as the user's shell would (the test plays the user)."""
    container = runner.client.containers.get(runner.container_name(f"dev8-{workspace_id}"))
    result = container.exec_run(["bash", "-lc", script], user="dev8")
    assert result.exit_code == 0, result.output.decode(errors="replace")
    return str(result.output.decode())


def test_data_written_before_a_stop_is_there_after_the_next_start(azure):
    standin, runner = azure
    spec = WorkspaceSpec(
        workspace_id=new_workspace_id(),
        name=f"e2e{secrets.token_hex(2)}",
        owner="alice",
        image=workspace_image(),
        resources=Resources(1, 1024),
        env={"DEV8_AGENT_TOKEN": secrets.token_urlsafe(16), "CODE_SERVER_PASSWORD": "x"},
        published=("agent",),
    )
    provider = standin.provider
    provider.create(spec)
    try:
        first = provider.start(spec.workspace_id)
        assert first.agent_url
        _wait_healthy(first.agent_url)
        note = secrets.token_hex(8)
        _in_workspace(
            runner,
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
            runner,
            spec.workspace_id,
            "cat ~/note.txt; readlink ~/link; cat /workspace/p/f",
        )
        assert seen.split() == [note, "note.txt", note]
    finally:
        provider.remove(spec.workspace_id)
        provider.remove_volumes(spec.workspace_id)
