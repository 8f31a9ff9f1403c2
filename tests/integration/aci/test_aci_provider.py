"""The ACI provider over real HTTPS through the real SDK clients against the Azure Resource
Manager stand-in (``armstandin``: a stand-in, not Azure; no ARM emulator exists), beyond the
contract suite: 409 and 404 answers, long-running operations, what Azure is never told or
shown, and observation in one list call per pass."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from dev8.core.errors import Conflict, ImageNotFound
from dev8.core.naming import new_workspace_id
from dev8.core.resources import PRESETS
from dev8.core.states import ContainerState
from dev8.providers.base import WorkspaceSpec
from tests.integration.aci.standin import AciStandIn, aci_standin

IMAGE = "dev8registry.azurecr.io/dev8-workspace:test"
GROUP_LIST = r"/containerGroups$"


@pytest.fixture
def azure() -> Iterator[AciStandIn]:
    with aci_standin() as standin:
        yield standin


def _spec(**changes: object) -> WorkspaceSpec:
    spec = WorkspaceSpec(
        workspace_id=new_workspace_id(),
        name=f"w{secrets.token_hex(3)}",
        owner="alice",
        image=IMAGE,
        resources=PRESETS["small"],
        env={"GITHUB_TOKEN": "ghp_" + secrets.token_hex(8)},
        published=("agent",),
    )
    return replace(spec, **changes)  # type: ignore[arg-type]


def test_a_share_of_another_workspace_is_never_adopted(azure: AciStandIn):
    """A 409 on a share whose metadata names another workspace: ``Conflict``, and the
    shares this create made are deleted again."""
    spec = _spec()
    other = _spec(workspace_id="ffffffffffff")
    azure.provider.create(other)
    azure.state.shares[f"dev8-{spec.workspace_id}-system"] = azure.state.shares.pop(
        f"dev8-{other.workspace_id}-system"
    )
    with pytest.raises(Conflict, match="does not belong"):
        azure.provider.create(spec)
    assert set(azure.state.shares) == {
        f"dev8-{other.workspace_id}-home",
        f"dev8-{spec.workspace_id}-system",  # the other's, untouched
        f"dev8-{other.workspace_id}-workspace",
    }
    assert azure.provider.status(spec.workspace_id).state is ContainerState.MISSING


def test_a_lost_record_is_made_again_on_the_same_shares_grown_to_the_quota(azure: AciStandIn):
    spec = _spec()
    azure.provider.create(spec)
    azure.provider.records.delete(spec.workspace_id)
    share = azure.state.shares[f"dev8-{spec.workspace_id}-home"]
    share["properties"]["shareQuota"] = 5
    assert azure.provider.status(spec.workspace_id).state is ContainerState.MISSING
    assert azure.provider.create(spec).state is ContainerState.CREATED
    assert share["properties"]["shareQuota"] == 20
    assert azure.provider.start(spec.workspace_id).running


def test_a_start_while_azure_still_deletes_the_group_waits_for_it(azure: AciStandIn):
    """ACI answers 409 to a PUT while the group is being deleted: tried again until gone."""
    spec = _spec()
    azure.provider.create(spec)
    azure.provider.start(spec.workspace_id)
    name = f"dev8-{spec.workspace_id}"
    azure.state.groups[name]["properties"]["provisioningState"] = "Deleting"
    puts = f"{name}$"

    def delete_after_a_refused_put() -> None:
        # The group stays until a second PUT came: the first one met it and had its 409.
        deadline = time.monotonic() + 30
        while azure.state.count("PUT", puts) < before + 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        azure.state.groups.pop(name)

    gone = threading.Thread(target=delete_after_a_refused_put)
    before = azure.state.count("PUT", puts)
    gone.start()
    record = azure.provider.records.read(spec.workspace_id)
    assert record is not None
    from dev8.providers.aci.provider import stored_group

    azure.provider._deploy(name, stored_group(record), deadline=time.monotonic() + 30)
    gone.join()
    assert azure.state.count("PUT", puts) - before >= 2  # one 409 at least, then the last
    assert azure.provider.status(spec.workspace_id).running


def test_stop_deletes_the_group_and_start_gets_a_new_address(azure: AciStandIn):
    spec = _spec()
    azure.provider.create(spec)
    first = azure.provider.start(spec.workspace_id)
    stopped = azure.provider.stop(spec.workspace_id)
    assert stopped.state is ContainerState.CREATED and f"dev8-{spec.workspace_id}" not in (
        azure.state.groups
    )
    assert azure.state.count("DELETE", spec.workspace_id + "$") == 1
    second = azure.provider.start(spec.workspace_id)
    assert first.agent_url and second.agent_url and first.agent_url != second.agent_url
    assert len(azure.state.shares) == 3, "the shares stay"


def test_an_image_aci_cannot_pull_is_image_not_found_and_no_group_is_left(azure: AciStandIn):
    spec = _spec(image="dev8registry.azurecr.io/no-such-image:1")
    azure.provider.create(spec)
    with pytest.raises(ImageNotFound, match="cannot pull"):
        azure.provider.start(spec.workspace_id)
    assert azure.state.groups == {}
    assert azure.provider.status(spec.workspace_id).state is ContainerState.CREATED


def test_secrets_go_to_azure_as_secure_values_and_are_sealed_at_rest(azure: AciStandIn):
    spec = _spec()
    token = spec.env["GITHUB_TOKEN"]
    azure.provider.create(spec)
    assert token.encode() not in azure.provider.records.path(spec.workspace_id).read_bytes()
    azure.provider.start(spec.workspace_id)
    group = azure.state.groups[f"dev8-{spec.workspace_id}"]
    variables = group["properties"]["containers"][0]["properties"]["environmentVariables"]
    sent = {v["name"]: v for v in variables}
    assert sent["GITHUB_TOKEN"] == {"name": "GITHUB_TOKEN", "secureValue": token}
    assert "value" not in sent["DEV8_SYNC_PASSWORD"]
    shown = azure.provider.api.groups.container_groups.get("dev8-test", f"dev8-{spec.workspace_id}")
    assert all(v.secure_value is None for v in shown.containers[0].environment_variables)


def test_each_start_mounts_the_shares_with_the_account_key_of_now(azure: AciStandIn):
    spec = _spec()
    azure.provider.create(spec)
    azure.provider.start(spec.workspace_id)
    azure.provider.stop(spec.workspace_id)
    azure.state.account_key = secrets.token_urlsafe(32)  # rotated while it was stopped
    assert azure.provider.start(spec.workspace_id).running


def test_a_new_size_is_a_new_group_never_a_put_over_a_running_one(azure: AciStandIn):
    """ACI refuses a CPU or memory change of an existing group (the stand-in answers 409):
    the service's recreate is remove, create, start; the shares stay."""
    spec = _spec()
    azure.provider.create(spec)
    azure.provider.start(spec.workspace_id)
    azure.provider.remove(spec.workspace_id)
    azure.provider.create(replace(spec, resources=PRESETS["medium"]))
    azure.provider.start(spec.workspace_id)
    group = azure.state.groups[f"dev8-{spec.workspace_id}"]
    requests = group["properties"]["containers"][0]["properties"]["resources"]["requests"]
    assert requests == {"cpu": 4.0, "memoryInGB": 8.0}


@pytest.mark.parametrize("count", [1, 20])
def test_observation_is_one_list_call_per_pass(azure: AciStandIn, count: int):
    made = [_spec() for _ in range(count)]
    for spec in made:
        azure.provider.create(spec)
    for spec in made[::2]:
        azure.provider.start(spec.workspace_id)
    before = len(azure.state.requests)
    found = azure.provider.statuses()
    calls = azure.state.requests[before:]
    assert calls == [("GET", calls[0][1])] and calls[0][1].endswith("/containerGroups")
    assert {w: s.state for w, s in found.items()} == {
        spec.workspace_id: ContainerState.RUNNING if i % 2 == 0 else ContainerState.CREATED
        for i, spec in enumerate(made)
    }
    for spec in made[::2]:
        assert (
            found[spec.workspace_id].agent_url == azure.provider.status(spec.workspace_id).agent_url
        )


def test_logs_of_a_running_group(azure: AciStandIn):
    spec = _spec()
    azure.provider.create(spec)
    azure.provider.start(spec.workspace_id)
    assert list(azure.provider.logs(spec.workspace_id, tail=10)) == [b""]
