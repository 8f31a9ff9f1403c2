"""`dev8 ls` and `dev8 status` on the real engine: the quick way (no Typer, no SQLAlchemy,
no docker SDK) prints exactly what the full way prints, and the engine's socket is read as
the docker SDK reads it."""

from __future__ import annotations

import json
import re

from dev8.providers.docker.provider import DockerProvider
from dev8.providers.docker.reads import EngineReader, engine_socket


def aged(text: str) -> str:
    """``text`` with its ages ("3s ago") made alike: the two ways run seconds apart."""
    return re.sub(r"\b\d+[smhd] ago", "_ ago", text)


def test_the_quick_way_prints_what_the_full_way_prints(dev8):
    for name in ("quick-a", "quick-b"):
        dev8("create", name)
    dev8("ls")  # the first look records what the engine says

    # The full way: Typer (``--debug`` first), and the SDK's service, because the engine's
    # reader knows only the ``unix://`` spelling of the socket.
    full = {"DOCKER_HOST": f"http+unix://{engine_socket()}"}
    for args in (["ls"], ["ls", "--json"], ["status", "quick-a"], ["status", "quick-b", "--json"]):
        assert aged(dev8(*args).stdout) == aged(dev8("--debug", *args, **full).stdout), args
    assert [ws["name"] for ws in json.loads(dev8("ls", "--json").stdout)] == ["quick-a", "quick-b"]


def test_the_engine_is_read_as_the_docker_sdk_reads_it(dev8, provider: DockerProvider):
    dev8("create", "quick-c")
    workspace_id = json.loads(dev8("status", "quick-c", "--json").stdout)["id"]
    reader = EngineReader()

    assert reader.statuses() == provider.statuses()
    assert reader.status(workspace_id) == provider.status(workspace_id)
    assert reader.status("nosuch") == provider.status("nosuch")
