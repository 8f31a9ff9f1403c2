"""The pure parts of the agent relay's client: the upgrade request, the answer's head (what
follows it is the port's first bytes), and what each refusal means."""

from __future__ import annotations

import pytest

from dev8.cli.agent_relay import handshake_request, refusal, split_head
from dev8.core.errors import Busy, WorkspaceUnreachable


def test_the_upgrade_request():
    request = handshake_request("http://127.0.0.1:49153", "tok", 8000)
    assert request == (
        b"GET /relay/8000 HTTP/1.1\r\nHost: 127.0.0.1:49153\r\nAuthorization: Bearer tok\r\n"
        b"Connection: Upgrade\r\nUpgrade: dev8-relay\r\n\r\n"
    )


@pytest.mark.parametrize("token", ["", "a\r\nX-Evil: 1"])
def test_an_unusable_token_is_refused_before_sending(token):
    with pytest.raises(WorkspaceUnreachable, match="no usable agent token"):
        handshake_request("http://127.0.0.1:1", token, 22)


def test_the_bytes_after_the_head_are_kept():
    answer = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: dev8-relay\r\n\r\nSSH-2.0-x\r\n"
    assert split_head(answer) == (101, b"SSH-2.0-x\r\n")
    assert split_head(answer[:20]) is None  # not all there yet


def test_an_answer_that_is_not_http_is_unreachable():
    with pytest.raises(WorkspaceUnreachable, match="did not answer in HTTP"):
        split_head(b"SSH-2.0-OpenSSH\r\n\r\n")


def test_refusals_by_status():
    assert refusal(502, 8000).message == "nothing listens on port 8000 in the workspace"
    assert isinstance(refusal(503, 8000), Busy)
    assert "older image" in refusal(400, 1).message
    assert refusal(401, 1).message == "the workspace's agent refused the stream (401)"
