"""Docker's words for a container, mapped to the provider-neutral ones."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from dev8.core.states import ContainerState
from dev8.providers.docker.status import (
    container_state,
    inspected_status,
    listed_status,
    started_at,
)


@pytest.mark.parametrize(
    ("docker", "neutral"),
    [
        ("running", ContainerState.RUNNING),
        ("restarting", ContainerState.RESTARTING),
        ("paused", ContainerState.PAUSED),
        ("created", ContainerState.CREATED),
        ("exited", ContainerState.EXITED),
        ("dead", ContainerState.EXITED),
        ("removing", ContainerState.EXITED),
        ("something new", ContainerState.UNKNOWN),
        (None, ContainerState.UNKNOWN),
    ],
)
def test_states(docker, neutral):
    assert container_state(docker) is neutral


def test_start_times_keep_microseconds_and_are_utc():
    parsed = started_at("2026-11-26T12:00:01.123456789Z")
    assert parsed == datetime(2026, 11, 26, 12, 0, 1, 123456, tzinfo=timezone.utc)
    assert started_at("2026-11-26T12:00:01Z") == datetime(
        2026, 11, 26, 12, 0, 1, tzinfo=timezone.utc
    )


@pytest.mark.parametrize("never", [None, "", "0001-01-01T00:00:00Z", "not a time"])
def test_a_container_that_never_started_has_no_start_time(never):
    assert started_at(never) is None


def _bindings(port: int) -> dict:
    return {"9000/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}


def test_an_inspected_running_container_says_where_its_agent_is():
    attrs = {
        "State": {"Status": "running", "StartedAt": "2026-11-26T12:00:00Z", "ExitCode": 0},
        "RestartCount": 2,
        "NetworkSettings": {"Ports": _bindings(41000)},
        "HostConfig": {"PortBindings": _bindings(41000)},
        "Image": "sha256:abc",
    }
    status = inspected_status("c1", attrs)
    assert status.state is ContainerState.RUNNING and status.restart_count == 2
    assert status.agent_url == "http://127.0.0.1:41000"
    assert status.host_ports == {"agent": 41000}


def test_a_restarting_container_is_restarting_whatever_its_status_says():
    attrs = {"State": {"Status": "running", "Restarting": True, "ExitCode": 1}}
    status = inspected_status("c1", attrs)
    assert status.state is ContainerState.RESTARTING and status.agent_url is None


def test_a_stopped_container_keeps_its_configured_ports_but_has_no_agent_address():
    attrs = {
        "State": {"Status": "exited", "ExitCode": 137, "OOMKilled": True},
        "NetworkSettings": {"Ports": {}},
        "HostConfig": {"PortBindings": _bindings(41000)},
    }
    status = inspected_status("c1", attrs)
    assert status.state is ContainerState.EXITED and status.oom_killed
    assert status.ports == {} and status.host_ports == {"agent": 41000}
    assert status.agent_url is None


def test_a_listed_container():
    summary = {
        "Id": "c1",
        "State": "running",
        "ImageID": "sha256:abc",
        "Ports": [{"PrivatePort": 9000, "PublicPort": 41000, "IP": "127.0.0.1"}],
    }
    status = listed_status(summary)
    assert status.running and status.agent_url == "http://127.0.0.1:41000"


def test_roles_that_are_not_published_are_absent():
    """A relayed workspace publishes its agent only; the image still exposes the others."""
    ports = {**_bindings(41000), "8080/tcp": None, "2222/tcp": None}
    attrs = {
        "State": {"Status": "running"},
        "NetworkSettings": {"Ports": ports},
        "HostConfig": {"PortBindings": _bindings(41000)},
    }
    status = inspected_status("c1", attrs)
    assert status.ports == status.host_ports == {"agent": 41000}
    summary = {
        "State": "running",
        "Ports": [
            {"PrivatePort": 8080, "Type": "tcp"},
            {"PrivatePort": 9000, "PublicPort": 41000, "IP": "127.0.0.1"},
        ],
    }
    assert listed_status(summary).ports == {"agent": 41000}
