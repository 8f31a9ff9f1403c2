"""The SDK's two layers on a fake server: ``Client`` owns the collections, the models make
their calls through the low-level ``APIClient``."""

import ast
from pathlib import Path

import httpx
import pytest

import dev8.client.api
from dev8.client import APIClient, Client
from dev8.client.models import Workspace
from dev8.core.errors import InvalidInput, NotFound

WORKSPACE = {
    "id": "w1",
    "name": "demo",
    "owner": "alice",
    "image": "img",
    "image_id": "sha256:1",
    "cpus": 2,
    "memory_mb": 4096,
    "desired_state": "running",
    "state": "running",
}
OPERATION = {"id": "op1", "action": "start", "actor": "alice", "result": "succeeded"}


def fake_server(seen: list[httpx.Request]) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        path = request.url.path
        if path == "/api/v1/workspaces/demo":
            return httpx.Response(200, json=WORKSPACE)
        if path == "/api/v1/workspaces/demo/start":
            return httpx.Response(202, json={"workspace": WORKSPACE, "operations": [OPERATION]})
        if path == "/api/v1/operations/op1":
            return httpx.Response(200, json=OPERATION)
        if path == "/api/v1/operations/op1/events":
            after = int(request.url.params.get("after", 0))
            return httpx.Response(200, json=[{"seq": 1, "message": "starting"}][after:])
        return httpx.Response(404, json={"error": "not_found", "message": f"no {path}"})

    return httpx.MockTransport(answer)


def test_public_usage_reads_like_the_cli():
    seen: list[httpx.Request] = []
    with Client("http://server/", token="dev8_t", transport=fake_server(seen)) as client:
        messages: list[str] = []
        workspace = client.workspaces.get("demo").start().wait(messages.append)
        assert isinstance(workspace.client, APIClient) and workspace.client is client.api
    assert workspace.state == "running" and messages == ["starting"]
    assert {r.headers["authorization"] for r in seen} == {"Bearer dev8_t"}
    assert seen[1].method == "POST" and seen[1].url.params["owner"] == "alice"


def test_an_error_answer_is_the_dev8_class_it_names():
    client = Client("http://server", transport=fake_server([]))
    with client, pytest.raises(NotFound, match="no /api/v1/workspaces/gone"):
        client.workspaces.get("gone")


def test_a_model_takes_the_client_or_its_api():
    with Client("http://server", transport=fake_server([])) as client:
        assert Workspace(client, {"name": "demo"}).client is client.api
        assert Workspace(client.api, {"name": "demo"}).client is client.api


def test_from_env(monkeypatch):
    monkeypatch.delenv("DEV8_SERVER_URL", raising=False)
    with pytest.raises(InvalidInput, match="DEV8_SERVER_URL is not set"):
        Client.from_env()
    monkeypatch.setenv("DEV8_SERVER_URL", "http://server:8700/")
    monkeypatch.setenv("DEV8_TOKEN", "dev8_secret")
    with Client.from_env() as client:
        assert client.base_url == "http://server:8700"
        assert client.api._http.headers["authorization"] == "Bearer dev8_secret"


def test_the_low_level_client_imports_no_model():
    """The import cycle stays broken: models depend on ``api``, never the other way."""
    tree = ast.parse(Path(dev8.client.api.__file__).read_text())
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    leaves = {"dev8.client.tls"}  # imports nothing of dev8.client itself
    assert not {name for name in imported if name.startswith("dev8.client")} - leaves
