"""`dev8 port-forward`'s pure parts: the specs, and the listeners (on the loopback only, all
or none, a taken port refused in one line)."""

from __future__ import annotations

import socket

import pytest
from tests.net import free_port

from dev8.cli.forward import Forward, listen_all, parse_forward, parse_forwards
from dev8.core.errors import Conflict, InvalidInput


@pytest.mark.parametrize(
    "spec,expected",
    [
        ("8000", Forward(8000, 8000)),
        ("9000:8000", Forward(9000, 8000)),
        (" 1:65535", Forward(1, 65535)),
    ],
)
def test_a_spec_is_remote_or_local_colon_remote(spec, expected):
    assert parse_forward(spec) == expected


@pytest.mark.parametrize(
    "spec", ["", "http", "0", "65536", "80:", ":80", "1:2:3", "-1", "8000:0", "8O00", "+80", "٣"]
)
def test_a_bad_spec_is_one_line(spec):
    with pytest.raises(InvalidInput) as refused:
        parse_forward(spec)
    message = refused.value.message
    assert message.startswith(f"invalid port forward {spec!r}: use [LOCAL:]REMOTE")
    assert "\n" not in message


def test_a_local_port_is_forwarded_once():
    assert parse_forwards(["8000", "9000:8000"]) == [Forward(8000, 8000), Forward(9000, 8000)]
    with pytest.raises(InvalidInput, match="local port 8000 is given twice"):
        parse_forwards(["8000", "8000:3000"])


def test_the_line_printed_per_forward():
    assert str(Forward(9000, 8000)) == "127.0.0.1:9000 → workspace port 8000"


def test_listeners_are_on_the_loopback_only():
    listeners = listen_all([Forward(free_port(), 80)], "web")
    try:
        (sock,) = listeners
        assert sock.getsockname()[0] == "127.0.0.1"
    finally:
        for sock in listeners:
            sock.close()


def test_a_taken_port_refuses_every_forward():
    free = free_port()
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(Conflict) as refused:
            listen_all([Forward(free, 80), Forward(port, 8000)], "web")
    assert refused.value.message == (
        f"local port {port} is already in use; choose another, e.g. "
        f"`dev8 port-forward web {port + 1}:8000`"
    )
    with socket.create_server(("127.0.0.1", free)):  # the first listener was closed again
        pass
