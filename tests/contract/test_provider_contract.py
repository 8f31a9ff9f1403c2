"""The provider contract (``dev8.providers.base.Provider``), as one suite every backend
passes: the in-memory fake, the real Docker provider on a real engine and the Kubernetes
provider against an API mock server (no real cluster). What it checks is
what the service relies on to retry safely and recover after a crash: idempotent create
(adopt), start, stop and remove; volumes kept unless purged, nothing else left by a remove;
only the asked-for ports published; state transitions in the
provider-neutral ``ContainerState``; failures as dev8's own error classes."""

from __future__ import annotations

from datetime import datetime

import pytest

from dev8.core.errors import Conflict, ImageNotFound, NotFound
from dev8.core.naming import VOLUME_ROLES, volume_name
from dev8.core.states import ACTIVE_CONTAINER, ContainerState
from dev8.providers.base import PORTS, BulkStatus
from tests.contract.conftest import Backend


def _volume_names(backend: Backend, workspace_id: str) -> set[str]:
    return {volume.name for volume in backend.provider.volumes(workspace_id)}


def test_create_makes_volumes_and_a_stopped_container(backend: Backend):
    spec = backend.spec()
    status = backend.provider.create(spec)
    assert status.state is ContainerState.CREATED
    assert status.container_id
    assert set(status.host_ports) == set(PORTS)
    expected = {volume_name(spec.workspace_id, role) for role in VOLUME_ROLES}
    assert _volume_names(backend, spec.workspace_id) == expected


def test_create_again_adopts_what_exists(backend: Backend):
    spec = backend.spec()
    first = backend.provider.create(spec)
    again = backend.provider.create(spec)
    assert again.container_id == first.container_id
    assert again.host_ports == first.host_ports


def _needs_image_resolution(backend: Backend) -> None:
    if not backend.resolves_images:
        pytest.skip(
            f"the {backend.provider.name} backend learns of a missing image when a Pod "
            "starts (tests/integration/kubernetes: a start the nodes cannot pull)"
        )


def test_create_with_a_missing_image_creates_nothing(backend: Backend):
    _needs_image_resolution(backend)
    spec = backend.spec(image="dev8/no-such-image:contract")
    with pytest.raises(ImageNotFound):
        backend.provider.create(spec)
    assert backend.provider.status(spec.workspace_id).state is ContainerState.MISSING
    assert _volume_names(backend, spec.workspace_id) == set()
    assert backend.leftovers(spec.workspace_id) == set()


def test_start_stop_transitions_are_idempotent(backend: Backend):
    spec = backend.spec()
    backend.provider.create(spec)
    running = backend.provider.start(spec.workspace_id)
    assert running.state is ContainerState.RUNNING and running.running
    assert running.agent_url, "a running workspace says where its agent is"
    assert isinstance(running.started_at, datetime) and running.started_at.tzinfo is not None
    assert backend.provider.start(spec.workspace_id).state is ContainerState.RUNNING
    stopped = backend.provider.stop(spec.workspace_id, timeout=5)
    assert stopped.state not in ACTIVE_CONTAINER
    assert stopped.agent_url is None and stopped.ports == {}
    assert set(stopped.host_ports) == set(PORTS), "configured ports survive a stop"
    assert backend.provider.stop(spec.workspace_id, timeout=5).state not in ACTIVE_CONTAINER


def test_restart_runs_it_again(backend: Backend):
    spec = backend.spec()
    backend.provider.create(spec)
    backend.provider.start(spec.workspace_id)
    assert backend.provider.restart(spec.workspace_id, timeout=5).running


def test_remove_keeps_volumes_and_removing_what_is_gone_succeeds(backend: Backend):
    spec = backend.spec()
    backend.provider.create(spec)
    backend.provider.start(spec.workspace_id)
    backend.provider.remove(spec.workspace_id)
    assert backend.provider.status(spec.workspace_id).state is ContainerState.MISSING
    assert len(_volume_names(backend, spec.workspace_id)) == len(VOLUME_ROLES)
    backend.provider.remove(spec.workspace_id)
    destroyed = backend.provider.remove_volumes(spec.workspace_id)
    assert set(destroyed) == {volume_name(spec.workspace_id, role) for role in VOLUME_ROLES}
    assert backend.provider.remove_volumes(spec.workspace_id) == []
    assert _volume_names(backend, spec.workspace_id) == set()


def test_remove_leaves_nothing_but_the_volumes(backend: Backend):
    spec = backend.spec()
    backend.provider.create(spec)
    backend.provider.start(spec.workspace_id)
    assert backend.leftovers(spec.workspace_id), "the backend shows what a workspace holds"
    backend.provider.remove(spec.workspace_id)
    assert backend.leftovers(spec.workspace_id) == set()
    backend.provider.remove_volumes(spec.workspace_id)
    assert backend.leftovers(spec.workspace_id) == set()


def test_only_the_roles_asked_for_are_published(backend: Backend):
    spec = backend.spec(published=("agent",))
    created = backend.provider.create(spec)
    assert set(created.host_ports) == {"agent"}
    running = backend.provider.start(spec.workspace_id)
    assert set(running.ports) == {"agent"}
    assert running.agent_url and str(running.ports["agent"]) in running.agent_url
    assert set(backend.provider.status(spec.workspace_id).host_ports) == {"agent"}
    if isinstance(backend.provider, BulkStatus):
        assert set(backend.provider.statuses()[spec.workspace_id].ports) == {"agent"}


def test_create_after_remove_reuses_the_volumes(backend: Backend):
    spec = backend.spec()
    backend.provider.create(spec)
    before = _volume_names(backend, spec.workspace_id)
    backend.provider.remove(spec.workspace_id)
    assert backend.provider.create(spec).state is ContainerState.CREATED
    assert _volume_names(backend, spec.workspace_id) == before


def test_what_needs_a_container_says_not_found_without_one(backend: Backend):
    workspace_id = backend.spec().workspace_id
    assert backend.provider.status(workspace_id).state is ContainerState.MISSING
    assert backend.provider.stop(workspace_id).state is ContainerState.MISSING
    for call in (backend.provider.start, backend.provider.restart):
        with pytest.raises(NotFound):
            call(workspace_id)
    with pytest.raises(NotFound):
        list(backend.provider.logs(workspace_id))


def test_exec_needs_a_running_container(backend: Backend):
    spec = backend.spec()
    backend.provider.create(spec)
    with pytest.raises(Conflict):
        backend.provider.exec(spec.workspace_id, ["true"])


def test_image_references_resolve_or_say_not_found(backend: Backend):
    _needs_image_resolution(backend)
    assert backend.provider.image_id(backend.image)
    with pytest.raises(ImageNotFound):
        backend.provider.image_id("dev8/no-such-image:contract")


def test_bulk_status_agrees_with_status(backend: Backend):
    if not isinstance(backend.provider, BulkStatus):
        pytest.skip(f"the {backend.provider.name} backend has no bulk status")
    spec = backend.spec()
    backend.provider.create(spec)
    backend.provider.start(spec.workspace_id)
    listed = backend.provider.statuses()[spec.workspace_id]
    single = backend.provider.status(spec.workspace_id)
    assert (listed.state, listed.container_id, listed.ports) == (
        single.state,
        single.container_id,
        single.ports,
    )
    assert listed.agent_url == single.agent_url
