"""``dev8 server`` on the Kubernetes provider: the real application, database and reconciler,
the provider over real HTTP against the Kubernetes API mock with its stand-in kubelet. API
mock: no real cluster; the workspaces' agents are the fake of ``tests.fakes`` (a Pod's IP
leads nowhere here)."""

from __future__ import annotations

from pathlib import Path

from dev8.core.naming import LABEL_WORKSPACE_ID
from dev8.providers.kubernetes.specs import object_name
from tests.integration.kubernetes.apimock import Cluster
from tests.integration.server.conftest import cheap_password_hashes  # noqa: F401 (autouse)
from tests.integration.server.live import serving, wait_for

IMAGE = "registry.test/dev8/workspace:1"


def test_a_pod_lost_with_its_node_is_made_again_by_the_reconciler(
    cluster: Cluster, tmp_path: Path, database_url: str
):
    """API mock: no real cluster. The Pod is deleted behind the server's back, as when its
    node is lost; the reconciler sees the workspace not running while it should, queues a
    start, and the start makes a new Pod on the same claims."""
    with serving(tmp_path, database_url, provider=cluster.provider) as api:  # type: ignore[arg-type]
        admin = api.admin()
        accepted = admin.post("/api/v1/workspaces", json={"name": "lost", "image": IMAGE})
        assert accepted.status_code == 202, accepted.text
        assert [op["result"] for op in api.settle(admin, accepted.json())] == ["succeeded"] * 2
        workspace = api.context.store.find("admin", "lost")
        claims = cluster.api.list("PersistentVolumeClaim", f"{LABEL_WORKSPACE_ID}={workspace.id}")
        pod = cluster.api.get("Pod", object_name(workspace.id))
        assert pod is not None and len(claims) == 3

        cluster.api.delete("Pod", object_name(workspace.id), grace_s=0)

        def history() -> list[dict]:
            return admin.get("/api/v1/workspaces/lost/operations").json()

        wait_for(lambda: history()[0]["actor"] == "reconciler", message="a start queued")
        wait_for(lambda: history()[0]["result"] == "succeeded", message="the start done")
        assert history()[0]["action"] == "start"
        assert admin.get("/api/v1/workspaces/lost").json()["state"] == "running"
        new_pod = cluster.api.get("Pod", object_name(workspace.id))
        assert new_pod is not None and new_pod["metadata"]["uid"] != pod["metadata"]["uid"]
        after = cluster.api.list("PersistentVolumeClaim", f"{LABEL_WORKSPACE_ID}={workspace.id}")
        assert after == claims, "the claims are untouched"
