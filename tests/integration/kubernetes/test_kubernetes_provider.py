"""The Kubernetes provider's calls to the API, over real HTTP through the official client,
against a Kubernetes API mock server with a stand-in kubelet (``apimock``). API mock: no real
cluster. (The contract every backend passes runs it too: tests/contract.)

What is checked here is what only a cluster has: objects that exist already (409) or are gone
(404), a Pod lost with its node, an image the nodes cannot pull, and what one observation
pass costs in requests."""

from __future__ import annotations

import secrets
import socket

import pytest

from dev8.core.errors import Conflict, EngineUnavailable, ImageNotFound
from dev8.core.naming import LABEL_WORKSPACE_ID, VOLUME_ROLES, new_workspace_id, volume_name
from dev8.core.resources import Resources
from dev8.core.states import ACTIVE_CONTAINER, ContainerState
from dev8.providers.base import WorkspaceSpec
from dev8.providers.kubernetes.specs import object_name
from dev8.providers.registry import make_provider
from tests.integration.kubernetes.apimock import Cluster

IMAGE = "registry.test/dev8/workspace:1"


def workspace(image: str = IMAGE) -> WorkspaceSpec:
    return WorkspaceSpec(
        workspace_id=new_workspace_id(),
        name=f"k{secrets.token_hex(3)}",
        owner="alice",
        image=image,
        resources=Resources(1, 512),
        env={"DEV8_AGENT_TOKEN": secrets.token_urlsafe(16)},
        published=("agent",),
    )


def claim_uids(cluster: Cluster, workspace_id: str) -> dict[str, str]:
    claims = cluster.api.list("PersistentVolumeClaim", f"{LABEL_WORKSPACE_ID}={workspace_id}")
    return {claim["metadata"]["name"]: claim["metadata"]["uid"] for claim in claims}


def test_creating_what_exists_adopts_it_and_a_claim_made_before_is_kept(cluster: Cluster):
    """API mock: no real cluster. The second create finds the record (adopts); after a
    remove, the claims answer 409 and are kept, being labelled as this workspace's."""
    spec = workspace()
    first = cluster.provider.create(spec)
    claims = claim_uids(cluster, spec.workspace_id)
    assert cluster.provider.create(spec) == first
    cluster.provider.remove(spec.workspace_id)
    with cluster.server.counting() as made:
        again = cluster.provider.create(spec)
    assert again.state is ContainerState.CREATED
    assert claim_uids(cluster, spec.workspace_id) == claims, "the same claims, not new ones"
    claim_posts = [call for call in made if call[0] == "POST" and "claims" in call[1]]
    assert len(claim_posts) == len(VOLUME_ROLES)  # each answered 409, then read and kept


def test_a_claim_of_another_workspace_is_never_adopted(cluster: Cluster):
    """API mock: no real cluster. A claim with the workspace's name but another's label
    stops the create, which removes what it made and leaves that claim alone."""
    spec = workspace()
    taken = volume_name(spec.workspace_id, "workspace")
    cluster.api.create(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": taken, "labels": {LABEL_WORKSPACE_ID: "someone-else"}},
            "spec": {"accessModes": ["ReadWriteOnce"]},
        }
    )
    with pytest.raises(Conflict, match=taken):
        cluster.provider.create(spec)
    assert cluster.provider.status(spec.workspace_id).state is ContainerState.MISSING
    assert cluster.provider.volumes(spec.workspace_id) == []
    assert cluster.api.get("PersistentVolumeClaim", taken) is not None


def test_deleting_twice_succeeds(cluster: Cluster):
    """API mock: no real cluster. Every delete of what is gone (404) is a success."""
    spec = workspace()
    cluster.provider.create(spec)
    cluster.provider.start(spec.workspace_id)
    for _ in range(2):
        assert cluster.provider.stop(spec.workspace_id).state is ContainerState.CREATED
    with cluster.server.counting() as made:
        cluster.provider.remove(spec.workspace_id)
        cluster.provider.remove(spec.workspace_id)
    assert len([call for call in made if call[0] == "DELETE"]) == 6  # 3 kinds, twice
    assert cluster.leftovers(spec.workspace_id) == set()
    assert len(cluster.provider.remove_volumes(spec.workspace_id)) == len(VOLUME_ROLES)
    assert cluster.provider.remove_volumes(spec.workspace_id) == []


def test_stopping_keeps_the_claims_and_starting_makes_a_new_pod_on_them(cluster: Cluster):
    """API mock: no real cluster."""
    spec = workspace()
    cluster.provider.create(spec)
    first = cluster.provider.start(spec.workspace_id)
    pod = cluster.api.get("Pod", object_name(spec.workspace_id))
    claims = claim_uids(cluster, spec.workspace_id)
    cluster.provider.stop(spec.workspace_id, timeout=7)
    assert cluster.api.get("Pod", object_name(spec.workspace_id)) is None
    again = cluster.provider.start(spec.workspace_id)
    new_pod = cluster.api.get("Pod", object_name(spec.workspace_id))
    assert again.running and again.agent_url != first.agent_url  # a new Pod, a new address
    assert new_pod["metadata"]["uid"] != pod["metadata"]["uid"]
    assert claim_uids(cluster, spec.workspace_id) == claims
    volumes = {v["persistentVolumeClaim"]["claimName"] for v in new_pod["spec"]["volumes"][:3]}
    assert volumes == set(claims)


def test_a_pod_lost_with_its_node_is_made_again_by_the_next_start(cluster: Cluster):
    """API mock: no real cluster. The node's loss takes the Pod (deleted behind the
    provider's back); the workspace reads as not running, which is what makes the server's
    reconciler queue a start (as for a Docker container that vanished), and that start
    makes a new Pod on the untouched claims."""
    spec = workspace()
    cluster.provider.create(spec)
    cluster.provider.start(spec.workspace_id)
    claims = claim_uids(cluster, spec.workspace_id)
    cluster.api.delete("Pod", object_name(spec.workspace_id), grace_s=0)
    lost = cluster.provider.statuses()[spec.workspace_id]
    assert lost.state not in ACTIVE_CONTAINER and lost.agent_url is None
    assert cluster.provider.status(spec.workspace_id).state is lost.state
    with cluster.server.counting() as made:
        assert cluster.provider.start(spec.workspace_id).running
    assert claim_uids(cluster, spec.workspace_id) == claims
    assert not [call for call in made if "claims" in call[1]], "the claims are not touched"


def test_an_image_the_nodes_cannot_pull_is_image_not_found_at_start(cluster: Cluster):
    """API mock: no real cluster. The kubelet reports ErrImagePull: the start says so, and
    deletes the Pod that would retry forever; the workspace stays, stopped."""
    spec = workspace(image="registry.test/dev8/no-such-image:1")
    cluster.kubelet.unpullable.add(spec.image)
    cluster.provider.create(spec)
    with pytest.raises(ImageNotFound, match="cannot pull"):
        cluster.provider.start(spec.workspace_id)
    assert cluster.api.get("Pod", object_name(spec.workspace_id)) is None
    assert cluster.provider.status(spec.workspace_id).state is ContainerState.CREATED


def test_a_local_image_id_is_refused_before_anything_is_made(cluster: Cluster):
    """API mock: no real cluster."""
    spec = workspace(image="sha256:" + "ab" * 32)
    with pytest.raises(ImageNotFound, match="registry"):
        cluster.provider.create(spec)
    assert cluster.provider.volumes(spec.workspace_id) == []


def test_logs_are_the_pods_output(cluster: Cluster):
    """API mock: no real cluster (the mock answers ``pods/{name}/log``)."""
    spec = workspace()
    cluster.provider.create(spec)
    cluster.provider.start(spec.workspace_id)
    cluster.server.mock.pod_logs[object_name(spec.workspace_id)] = b"agent: healthy\n" * 3
    assert b"".join(cluster.provider.logs(spec.workspace_id, tail=3)) == b"agent: healthy\n" * 3


@pytest.mark.parametrize("count", [1, 20])
def test_one_observation_pass_costs_the_same_requests_for_1_or_20_workspaces(count: int):
    """API mock: no real cluster. ``statuses`` lists the Pods and the records (their
    metadata) once each, whatever the number of workspaces: never a GET per workspace."""
    from tests.integration.kubernetes.apimock import mock_cluster

    with mock_cluster() as cluster:
        specs = [workspace() for _ in range(count)]
        for n, spec in enumerate(specs):
            cluster.provider.create(spec)
            if n % 2 == 0:
                cluster.provider.start(spec.workspace_id)
        with cluster.server.counting() as made:
            seen = cluster.provider.statuses()
    assert [method for method, _ in made] == ["GET", "GET"]
    assert {path.rsplit("/", 1)[-1] for _, path in made} == {"pods", "secrets"}
    assert set(seen) == {spec.workspace_id for spec in specs}
    running = {spec.workspace_id for n, spec in enumerate(specs) if n % 2 == 0}
    assert {wid for wid, status in seen.items() if status.running} == running
    assert all(seen[wid].state is ContainerState.CREATED for wid in set(seen) - running)


def test_the_registry_makes_a_provider_that_finds_the_cluster_by_kubeconfig(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
):
    """API mock: no real cluster. ``DEV8_PROVIDER=kubernetes`` as a user sets it up:
    ``KUBECONFIG`` says where the API is, ``DEV8_KUBERNETES_NAMESPACE`` where to work."""
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    monkeypatch.setenv("DEV8_KUBERNETES_NAMESPACE", cluster.api.namespace)
    provider = make_provider("kubernetes")
    provider.ping()
    spec = workspace()
    provider.create(spec)
    assert cluster.api.get("Secret", object_name(spec.workspace_id)) is not None


def test_an_api_that_does_not_answer_is_engine_unavailable(
    cluster: Cluster, tmp_path, monkeypatch: pytest.MonkeyPatch
):
    """API mock: no real cluster (a kubeconfig naming a loopback port nobody listens on)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    text = cluster.kubeconfig.read_text().replace(cluster.server.url, f"http://127.0.0.1:{port}")
    (tmp_path / "kubeconfig").write_text(text)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kubeconfig"))
    with pytest.raises(EngineUnavailable, match="Kubernetes API"):
        make_provider("kubernetes").ping()


def test_a_command_runs_in_the_pod_as_the_user_and_says_how_it_ended(cluster: Cluster):
    """API mock: no real cluster. The mock speaks the exec WebSocket protocol (stdout,
    stderr, the exit status on the error channel) and answers instead of running anything."""
    spec = workspace()
    cluster.provider.create(spec)
    cluster.provider.start(spec.workspace_id)
    cluster.server.mock.exec_answers["fails"] = (3, b"some output\n", b"an error\n")
    result = cluster.provider.exec(spec.workspace_id, ["fails"], workdir="/workspace")
    assert (result.exit_code, result.output) == (3, b"some output\nan error\n")
    assert cluster.server.mock.executed[-1][:4] == ["runuser", "-u", "dev8", "--"]
    assert cluster.provider.exec(spec.workspace_id, ["true"], user="root").exit_code == 0
