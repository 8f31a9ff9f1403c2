"""An Azure Resource Manager stand-in: NOT Azure. No ARM emulator exists, so the tests of the
ACI provider run it against this in-process HTTPS server, which implements exactly the calls
the provider makes, reached by the real SDK clients over real HTTP(S) (the SDK refuses a
bearer token over plain HTTP, so it serves TLS with a certificate made for the test):

- container groups: PUT (201 and an ``Azure-AsyncOperation`` to poll; 409 while the group is
  being deleted, or for a PUT that changes a group's CPU or memory, which ACI refuses), GET
  (404 ``ResourceNotFound``; secure values never shown, instance views included), list by
  resource group (no instance views, as ARM's list), DELETE (202 and a ``Location`` to poll,
  204 for a group that is not there), a container's logs;
- file shares: PUT (201; 409 for one that exists), GET, PATCH (the quota), DELETE (204 when
  absent), list with a name-prefix ``$filter``; the storage account's ``listKeys``.

Each long-running operation answers "InProgress" at least once before it ends, so that the
SDK's polling runs for real. What runs a group is a ``Runner``: ``MemoryRunner`` pretends
(a private address from 10.0.0.0/24, logs are empty), ``DockerRunner`` runs the group's
image as a container on the local Docker engine with the group's environment and a Docker
volume per share, so an end-to-end test can reach the agent. Requests are logged, so tests
can count them.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import re
import secrets
import ssl
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from azure.core.credentials import AccessToken

from tests.integration.server.test_tls import self_signed  # a certificate for 127.0.0.1

TOKEN = "stand-in-token-" + secrets.token_hex(8)
GROUPS = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)"
    r"/providers/Microsoft\.ContainerInstance/containerGroups(?:/(?P<name>[^/]+))?"
    r"(?:/containers/(?P<container>[^/]+)/(?P<action>logs|exec))?$"
)
ACCOUNT = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)"
    r"/providers/Microsoft\.Storage/storageAccounts/(?P<account>[^/]+)"
    r"(?:/(?P<keys>listKeys)|/fileServices/default/shares(?:/(?P<share>[^/]+))?)$"
)
OPERATION = re.compile(r"^/standin/operations/(?P<id>[0-9a-f-]+)$")
SHARE_NAME = re.compile(r"^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$")


class StaticToken:
    """A credential that always gives the stand-in's token (azure-identity's interface)."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(TOKEN, int(datetime.datetime.now().timestamp()) + 3600)


class Runner(Protocol):
    def run(self, name: str, group: dict[str, Any]) -> str:
        """Start the group's container; its private IP. ``LookupError`` for an image that
        cannot be pulled."""

    def remove(self, name: str) -> None: ...

    def logs(self, name: str, tail: int | None) -> str: ...

    def remove_share(self, share: str) -> None: ...

    def shell(self, name: str, command: str) -> Any:
        """A socket joined to ``command`` run with a terminal in the group's container;
        ``LookupError`` if this runner runs nothing."""


class MemoryRunner:
    """Runs nothing: every group gets the next address of 10.0.0.0/24."""

    def __init__(self) -> None:
        self._addresses = (str(ip) for ip in ipaddress.ip_network("10.0.0.0/24").hosts())

    def run(self, name: str, group: dict[str, Any]) -> str:
        if "no-such" in _image(group):
            raise LookupError(f"image {_image(group)} not found")
        return next(self._addresses)

    def remove(self, name: str) -> None:
        pass

    def logs(self, name: str, tail: int | None) -> str:
        return ""

    def remove_share(self, share: str) -> None:
        pass

    def shell(self, name: str, command: str) -> Any:
        raise LookupError("the memory runner runs no container")


class DockerRunner:
    """Runs each group's container on the local Docker engine: the group's image (never
    pulled: it must be on the engine), its environment (plain and secure values alike, as
    ACI gives them to the container), a Docker volume per share at the group's mount paths.
    A delete stops the container (SIGTERM, then up to ``STOP_S``: the agent's last sync)
    and removes it; a share's delete removes its volume. Everything is labelled ``LABEL``.

    Not ACI: the container runs on Docker's default bridge (its address stands for the
    group's private IP), with Docker's default capabilities and no SMB (a share is a plain
    local volume here; the agent's SMB detection is tested on its own)."""

    LABEL = "dev.dev8.arm-standin"
    STOP_S = 60

    def __init__(self) -> None:
        import docker

        self.client = docker.from_env()

    def container_name(self, name: str) -> str:
        return f"arm-standin-{name}"

    def volume_name(self, share: str) -> str:
        return f"arm-standin-{share}"

    def run(self, name: str, group: dict[str, Any]) -> str:
        import docker.errors

        properties = group["properties"]
        container = properties["containers"][0]["properties"]
        try:
            image = self.client.images.get(container["image"])
        except docker.errors.ImageNotFound:
            raise LookupError(f"image {container['image']} is not on the engine") from None
        shares = {v["name"]: v["azureFile"]["shareName"] for v in properties.get("volumes") or []}
        mounts = {}
        for mount in container.get("volumeMounts") or []:
            volume = self.volume_name(shares[mount["name"]])
            self.client.volumes.create(volume, labels={self.LABEL: shares[mount["name"]]})
            mounts[volume] = {"bind": mount["mountPath"], "mode": "rw"}
        environment = {
            v["name"]: v["value"] if "value" in v else v.get("secureValue", "")
            for v in container.get("environmentVariables") or []
        }
        started = self.client.containers.run(
            image.id,
            detach=True,
            name=self.container_name(name),
            environment=environment,
            volumes=mounts,
            labels={self.LABEL: name},
            restart_policy={"Name": "always"},
        )
        started.reload()
        return str(started.attrs["NetworkSettings"]["IPAddress"])

    def remove(self, name: str) -> None:
        import docker.errors

        try:
            container = self.client.containers.get(self.container_name(name))
        except docker.errors.NotFound:
            return
        container.stop(timeout=self.STOP_S)
        container.remove(force=True)

    def logs(self, name: str, tail: int | None) -> str:
        container = self.client.containers.get(self.container_name(name))
        output: bytes = container.logs(tail=tail if tail is not None else "all")
        return output.decode(errors="replace")

    def remove_share(self, share: str) -> None:
        import docker.errors

        with suppress(docker.errors.NotFound):
            self.client.volumes.get(self.volume_name(share)).remove(force=True)

    def shell(self, name: str, command: str) -> Any:
        container = self.client.containers.get(self.container_name(name))
        made = self.client.api.exec_create(container.id, [command], stdin=True, tty=True)
        return self.client.api.exec_start(made["Id"], socket=True, tty=True)._sock

    def clean(self) -> None:
        """Remove whatever a failed test left (containers, then volumes) by label."""
        label = {"label": self.LABEL}
        for container in self.client.containers.list(all=True, filters=label):
            container.remove(force=True)
        for volume in self.client.volumes.list(filters=label):
            volume.remove(force=True)


@dataclass
class Operation:
    done: threading.Event = field(default_factory=threading.Event)
    error: dict[str, str] | None = None
    polls: int = 0


@dataclass
class ArmState:
    runner: Runner
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    shares: dict[str, dict[str, Any]] = field(default_factory=dict)
    operations: dict[str, Operation] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    account_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    # exec sessions: id -> (password, group, command); the WebSocket server's address
    sessions: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    exec_url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, method: str, pattern: str) -> int:
        return sum(1 for m, path in self.requests if m == method and re.search(pattern, path))


class Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    @property
    def state(self) -> ArmState:
        return self.server.state

    def _reply(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, code: str, message: str) -> None:
        self._reply(status, {"error": {"code": code, "message": message}})

    def _body(self) -> dict[str, Any]:
        return json.loads(self.raw_body or b"{}")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.state.requests.append((method, url.path))
        # Read whatever the answer: an unread body would spoil the next request on the
        # connection the SDK keeps alive.
        self.raw_body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._error(401, "AuthenticationFailed", "no valid bearer token")
        if (match := OPERATION.match(url.path)) is not None:
            return self._operation(match["id"], query.get("kind") == "location")
        if "api-version" not in query:
            return self._error(400, "MissingApiVersionParameter", "api-version is required")
        if (match := GROUPS.match(url.path)) is not None:
            if match["action"] == "exec":
                return self._exec(method, match["name"])
            return self._groups(method, match["name"], match["container"], query)
        if (match := ACCOUNT.match(url.path)) is not None:
            if match["keys"]:
                return self._keys(method)
            return self._shares(method, match["share"], query)
        self._error(404, "InvalidResourceType", f"no such resource {url.path}")

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_POST(self) -> None:
        self._dispatch("POST")

    # Long-running operations ----------------------------------------------------------
    def _start_operation(self, work: Any, location: bool = False) -> str:
        """Run ``work`` in the background; the URL to poll it at: ARM's Azure-AsyncOperation
        kind (a status document) or, with ``location``, the Location kind (202 while it runs,
        200 once done, the error's status code if it failed)."""
        operation_id = str(uuid.uuid4())
        operation = Operation()
        self.state.operations[operation_id] = operation

        def run() -> None:
            try:
                work()
            except LookupError as exc:
                operation.error = {"code": "InaccessibleImage", "message": str(exc)}
            except Exception as exc:
                operation.error = {"code": "InternalServerError", "message": str(exc)}
            operation.done.set()

        threading.Thread(target=run, daemon=True).start()
        kind = "?kind=location" if location else ""
        return f"{self.server.base_url}/standin/operations/{operation_id}{kind}"

    def _operation(self, operation_id: str, location: bool) -> None:
        operation = self.state.operations.get(operation_id)
        if operation is None:
            return self._error(404, "OperationNotFound", operation_id)
        operation.polls += 1
        retry = {"Retry-After": "0"}
        running = operation.polls == 1 or not operation.done.is_set()
        if location:
            if running:
                return self._reply(
                    202, None, {**retry, "Location": self.server.base_url + self.path}
                )
            if operation.error:
                return self._reply(500, {"error": operation.error})
            return self._reply(200)
        if running:
            return self._reply(200, {"status": "InProgress"}, retry)
        if operation.error:
            return self._reply(200, {"status": "Failed", "error": operation.error}, retry)
        self._reply(200, {"status": "Succeeded"}, retry)

    # Container groups -----------------------------------------------------------------
    def _groups(
        self, method: str, name: str | None, container: str | None, query: dict[str, str]
    ) -> None:
        with self.state.lock:
            group = self.state.groups.get(name or "")
        if name is None:
            if method != "GET":
                return self._error(405, "MethodNotAllowed", method)
            with self.state.lock:
                listed = [_listed(g) for g in self.state.groups.values()]
            return self._reply(200, {"value": listed})
        if container is not None:
            if group is None or group["properties"]["provisioningState"] != "Succeeded":
                return self._error(404, "ResourceNotFound", f"container group {name} not found")
            tail = int(query["tail"]) if "tail" in query else None
            return self._reply(200, {"content": self.state.runner.logs(name, tail)})
        if method == "GET":
            if group is None:
                return self._error(404, "ResourceNotFound", f"container group {name} not found")
            return self._reply(200, _shown(group))
        if method == "PUT":
            return self._put_group(name, group, self._body())
        if method == "DELETE":
            return self._delete_group(name, group)
        self._error(405, "MethodNotAllowed", method)

    def _put_group(self, name: str, existing: dict[str, Any] | None, body: dict[str, Any]) -> None:
        problem = _invalid_group(body, self.state.shares, self.state.account_key)
        if problem:
            return self._error(400, "InvalidRequestContent", problem)
        if existing is not None:
            state = existing["properties"]["provisioningState"]
            if state != "Succeeded" or _resources(existing) != _resources(body):
                return self._error(
                    409,
                    "ContainerGroupTransitioning"
                    if state != "Succeeded"
                    else "ContainerGroupUpdateNotSupported",
                    f"container group {name} is {state}; its CPU and memory cannot change",
                )
            return self._reply(200, _shown(existing))
        group = {
            **body,
            "name": name,
            "id": self.path.split("?")[0],
            "type": "Microsoft.ContainerInstance/containerGroups",
        }
        group["properties"] = {**body["properties"], "provisioningState": "Creating"}
        with self.state.lock:
            self.state.groups[name] = group

        def deploy() -> None:
            try:
                ip = self.state.runner.run(name, group)
            except LookupError:
                with self.state.lock:
                    group["properties"]["provisioningState"] = "Failed"
                raise
            now = datetime.datetime.now(datetime.timezone.utc).isoformat()
            with self.state.lock:
                group["properties"]["ipAddress"]["ip"] = ip
                group["properties"]["provisioningState"] = "Succeeded"
                group["properties"]["instanceView"] = {"state": "Running", "events": []}
                for each in group["properties"]["containers"]:
                    each["properties"]["instanceView"] = {
                        "restartCount": 0,
                        "currentState": {"state": "Running", "startTime": now},
                        "events": [],
                    }

        operation = self._start_operation(deploy)
        self._reply(201, _shown(group), {"Azure-AsyncOperation": operation})

    def _delete_group(self, name: str, group: dict[str, Any] | None) -> None:
        if group is None:
            return self._reply(204)
        with self.state.lock:
            group["properties"]["provisioningState"] = "Deleting"

        def delete() -> None:
            self.state.runner.remove(name)
            with self.state.lock:
                self.state.groups.pop(name, None)

        operation = self._start_operation(delete, location=True)
        # ARM's Location polling: 202 while it runs, 200 once done.
        self._reply(202, None, {"Location": operation, "Retry-After": "0"})

    def _exec(self, method: str, name: str | None) -> None:
        """ACI's exec: the address of a WebSocket joined to the command with a terminal,
        and the password to send first."""
        group = self.state.groups.get(name or "")
        if method != "POST":
            return self._error(405, "MethodNotAllowed", method)
        if group is None or group["properties"]["provisioningState"] != "Succeeded":
            return self._error(409, "ContainerGroupNotRunning", f"{name} is not running")
        session, password = str(uuid.uuid4()), secrets.token_urlsafe(16)
        command = str(self._body().get("command") or "")
        self.state.sessions[session] = (password, str(name), command)
        self._reply(200, {"webSocketUri": f"{self.state.exec_url}/{session}", "password": password})

    # File shares and the account's keys -------------------------------------------------
    def _keys(self, method: str) -> None:
        if method != "POST":
            return self._error(405, "MethodNotAllowed", method)
        key = {"keyName": "key1", "value": self.state.account_key, "permissions": "FULL"}
        self._reply(200, {"keys": [key]})

    def _shares(self, method: str, name: str | None, query: dict[str, str]) -> None:
        shares = self.state.shares
        if name is None:
            prefix = query.get("$filter", "")
            listed = [s for n, s in sorted(shares.items()) if n.startswith(prefix)]
            return self._reply(200, {"value": listed})
        share = shares.get(name)
        if method == "GET":
            if share is None:
                return self._error(404, "ShareNotFound", f"share {name} not found")
            return self._reply(200, share)
        if method == "PUT":
            if not SHARE_NAME.fullmatch(name):
                return self._error(400, "InvalidResourceName", f"share name {name} is invalid")
            if share is not None:
                return self._error(409, "ShareAlreadyExists", f"share {name} exists")
            properties = self._body().get("properties") or {}
            shares[name] = {
                "id": self.path.split("?")[0],
                "name": name,
                "type": "Microsoft.Storage/storageAccounts/fileServices/shares",
                "properties": {
                    "shareQuota": int(properties.get("shareQuota") or 5120),
                    "metadata": properties.get("metadata") or {},
                },
            }
            return self._reply(201, shares[name])
        if method == "PATCH":
            if share is None:
                return self._error(404, "ShareNotFound", f"share {name} not found")
            quota = (self._body().get("properties") or {}).get("shareQuota")
            if quota:
                share["properties"]["shareQuota"] = int(quota)
            return self._reply(200, share)
        if method == "DELETE":
            if shares.pop(name, None) is None:
                return self._reply(204)
            self.state.runner.remove_share(name)
            return self._reply(200)
        self._error(405, "MethodNotAllowed", method)


def _image(group: dict[str, Any]) -> str:
    return str(group["properties"]["containers"][0]["properties"]["image"])


def _resources(group: dict[str, Any]) -> Any:
    return [c["properties"]["resources"] for c in group["properties"]["containers"]]


def _invalid_group(body: dict[str, Any], shares: dict[str, Any], account_key: str) -> str:
    """What ACI would refuse in the group the provider sends (the parts it builds)."""
    properties = body.get("properties") or {}
    containers = properties.get("containers") or []
    if not containers or not body.get("location"):
        return "a container group needs a location and a container"
    address = properties.get("ipAddress") or {}
    if len(address.get("ports") or []) > 5:
        return "at most 5 ports on a container group's IP address"
    if address.get("type") == "Private" and not properties.get("subnetIds"):
        return "a private IP address needs a subnet"
    for volume in properties.get("volumes") or []:
        azure_file = volume.get("azureFile") or {}
        if azure_file.get("storageAccountKey") != account_key:
            return f"volume {volume.get('name')}: the storage account key is wrong"
        if azure_file.get("shareName") not in shares:
            return f"volume {volume.get('name')}: share {azure_file.get('shareName')} not found"
    return ""


def _shown(group: dict[str, Any]) -> dict[str, Any]:
    """The group as ARM shows it: secure values and keys never come back."""
    shown = json.loads(json.dumps(group))
    properties = shown["properties"]
    for container in properties["containers"]:
        for variable in container["properties"].get("environmentVariables") or []:
            variable.pop("secureValue", None)
    for volume in properties.get("volumes") or []:
        (volume.get("azureFile") or {}).pop("storageAccountKey", None)
    for credential in properties.get("imageRegistryCredentials") or []:
        credential.pop("password", None)
    return shown


def _listed(group: dict[str, Any]) -> dict[str, Any]:
    """As ARM's list gives it: no instance views."""
    listed = _shown(group)
    listed["properties"].pop("instanceView", None)
    for container in listed["properties"]["containers"]:
        container["properties"].pop("instanceView", None)
    return listed


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: ArmState
    base_url: str


def _exec_server(state: ArmState) -> Any:
    """The exec sessions' WebSocket server (plain ws on 127.0.0.1; Azure's is wss): the
    first message must be the session's password, then bytes go both ways between the
    socket and the runner's terminal until the command ends."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.server import serve

    def session(socket: Any) -> None:
        known = state.sessions.pop(socket.request.path.rsplit("/", 1)[-1], None)
        if known is None or socket.recv(timeout=10) != known[0]:
            socket.close(1008, "unknown session or wrong password")
            return
        try:
            terminal = state.runner.shell(known[1], known[2])
        except LookupError as exc:
            socket.close(1011, str(exc))
            return

        def output() -> None:
            while data := terminal.recv(65536):
                socket.send(data)
            socket.close()

        reader = threading.Thread(target=output, daemon=True)
        reader.start()
        try:
            for message in socket:
                terminal.sendall(message if isinstance(message, bytes) else message.encode())
        except (ConnectionClosed, OSError):
            pass
        reader.join(timeout=10)
        terminal.close()

    server = serve(session, "127.0.0.1", 0)
    state.exec_url = f"ws://127.0.0.1:{server.socket.getsockname()[1]}/exec"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@dataclass
class StandIn:
    url: str
    ca_file: str
    state: ArmState


@contextmanager
def arm_standin(runner: Runner | None = None) -> Iterator[StandIn]:
    """The stand-in on 127.0.0.1 (a free port), stopped afterwards."""
    with tempfile.TemporaryDirectory(prefix="arm-standin-") as directory:
        cert, key = self_signed(Path(directory))
        server = _Server(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        server.state = ArmState(runner or MemoryRunner())
        server.base_url = f"https://127.0.0.1:{server.server_address[1]}"
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        sockets = _exec_server(server.state)
        try:
            yield StandIn(server.base_url, str(cert), server.state)
        finally:
            sockets.shutdown()
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)
