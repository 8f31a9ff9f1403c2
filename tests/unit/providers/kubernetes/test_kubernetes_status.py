"""Pods as the API reports them, mapped to ``RuntimeStatus`` (pure; no cluster)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from dev8.core.states import ContainerState
from dev8.providers.kubernetes.specs import CONTAINER
from dev8.providers.kubernetes.status import (
    PUBLISHED_ANNOTATION,
    container_state,
    not_running_status,
    pod_status,
    problem,
)

IMAGE = "registry.test/dev8/workspace:1"


def pod(phase: str | None, container: dict[str, Any] | None = None, **status: Any) -> dict:
    statuses = [{"name": CONTAINER, "restartCount": 0, **(container or {})}]
    return {
        "metadata": {"name": "dev8-abc", "annotations": {PUBLISHED_ANNOTATION: "agent"}},
        "spec": {"containers": [{"name": CONTAINER, "image": IMAGE}]},
        "status": {"phase": phase, "containerStatuses": statuses, **status},
    }


RUNNING = {"state": {"running": {"startedAt": "2026-12-02T01:02:03Z"}}}


@pytest.mark.parametrize(
    ("manifest", "state"),
    [
        (pod(None, {}), ContainerState.CREATED),  # not even scheduled yet
        (pod("Pending", {"state": {"waiting": {"reason": "ContainerCreating"}}}), "created"),
        (pod("Running", RUNNING), ContainerState.RUNNING),
        (
            pod("Running", {"state": {"waiting": {"reason": "CrashLoopBackOff"}}}),
            ContainerState.RESTARTING,
        ),
        (pod("Running", {"state": {"terminated": {"exitCode": 1}}}), "restarting"),
        (pod("Failed", {}, reason="Evicted"), ContainerState.EXITED),
        (pod("Succeeded", {}), ContainerState.EXITED),
        (pod("Unknown", RUNNING), ContainerState.UNKNOWN),  # its node stopped answering
    ],
)
def test_the_pod_phase_and_container_state_say_the_container_state(manifest, state):
    assert container_state(manifest) is ContainerState(state)


def test_a_pod_being_deleted_is_no_longer_running():
    terminating = pod("Running", RUNNING)
    terminating["metadata"]["deletionTimestamp"] = "2026-12-02T01:05:00Z"
    assert container_state(terminating) is ContainerState.EXITED


def test_a_running_pod_says_where_its_agent_is_and_when_it_started():
    status = pod_status(pod("Running", RUNNING, podIP="10.42.0.7"))
    assert status.running and status.agent_url == "http://10.42.0.7:9000"
    assert status.started_at == datetime(2026, 12, 2, 1, 2, 3, tzinfo=timezone.utc)
    assert status.ports == status.host_ports == {"agent": 9000}
    assert (status.container_id, status.image_id) == ("dev8-abc", IMAGE)


def test_an_ipv6_pod_address_is_bracketed():
    status = pod_status(pod("Running", RUNNING, podIP="fd00::7"))
    assert status.agent_url == "http://[fd00::7]:9000"


def test_a_pod_not_running_has_no_agent_address_nor_ports():
    status = pod_status(pod("Pending", {}, podIP="10.42.0.7"))
    assert status.agent_url is None and status.ports == {} and status.host_ports


def test_a_restarting_container_reports_its_last_exit_and_restarts():
    crashed = {
        "restartCount": 3,
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
        "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}},
    }
    status = pod_status(pod("Running", crashed))
    assert (status.state, status.exit_code, status.oom_killed, status.restart_count) == (
        ContainerState.RESTARTING,
        137,
        True,
        3,
    )
    assert status.error == "CrashLoopBackOff: back-off 40s"


def test_what_keeps_a_pod_from_running_is_said_in_one_line():
    evicted = pod("Failed", {}, reason="Evicted", message="The node was low on memory.")
    assert problem(evicted) == "Evicted The node was low on memory."
    unschedulable = pod(
        "Pending",
        {},
        conditions=[
            {"type": "PodScheduled", "status": "False", "message": "0/3 nodes: Insufficient cpu"}
        ],
    )
    assert problem(unschedulable) == "not scheduled: 0/3 nodes: Insufficient cpu"
    assert problem(pod("Running", RUNNING)) == ""


def test_a_workspace_without_a_pod_is_created_with_its_configured_ports():
    manifest = pod(None)
    manifest["metadata"]["annotations"][PUBLISHED_ANNOTATION] = "ide,ssh,agent"
    status = not_running_status(manifest)
    assert status.state is ContainerState.CREATED and not status.running
    assert status.host_ports == {"ide": 8080, "ssh": 2222, "agent": 9000}
    assert status.ports == {} and status.agent_url is None
