"""A Kubernetes API mock server on loopback, and a stand-in for the kubelet. API mock: no real
cluster.

The server is ``kmock``'s ``KubernetesEmulator`` (PyPI), an in-memory store of objects served
over real HTTP as the API serves them: create (409 when the name is taken), read, list,
merge-patch (``/status`` too) and delete (404 when there is none). What the API does and the
emulator does not, it is taught here, as the API specifies it:

- lists honour ``labelSelector`` (equality, inequality and existence terms);
- new objects get ``uid``, ``creationTimestamp`` and ``resourceVersion``;
- a list asked for as ``PartialObjectMetadataList`` carries only the objects' metadata;
- ``pods/{name}/log`` answers with the Pod's output (``ClusterMock.pod_logs``);
- ``pods/{name}/exec`` upgrades to a WebSocket and speaks the API's channel protocol
  (``v4.channel.k8s.io``: stdout on channel 1, stderr on 2, the exit status as a ``Status``
  on 3), answering from ``ClusterMock.exec_answers`` instead of running anything.

Not emulated: graceful deletion (a deleted Pod is gone at once), admission, scheduling,
watches from the provider (it does not use them).

The stand-in kubelet (``Kubelet``) is told of each new Pod by the server and plays the node
through the API: it patches the Pod's ``status`` to ``Running`` with an IP, a started
container and the ``Ready`` condition, or, for an image it was told it cannot pull, leaves
the container waiting with ``ErrImagePull``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import queue
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import aiohttp.web
import kmock
import yaml
from kubernetes import config as kube_config

from dev8.core.naming import HELPER_ROLE, LABEL_ROLE, LABEL_WORKSPACE_ID
from dev8.providers.kubernetes.client import KubeApi
from dev8.providers.kubernetes.provider import KubernetesProvider
from dev8.providers.kubernetes.settings import KubernetesSettings
from dev8.providers.kubernetes.specs import ClusterOptions
from tests.integration.kubernetes.helpernode import HelperNode, exit_status

# Requests with this User-Agent are the test's own (the kubelet's, a check behind the
# provider's back) and are not counted as the provider's.
TEST_AGENT = "dev8-tests/kubelet"
RESOURCES = {
    "Pod": "v1/pods",
    "Secret": "v1/secrets",
    "PersistentVolumeClaim": "v1/persistentvolumeclaims",
    "NetworkPolicy": "networking.k8s.io/v1/networkpolicies",
}


def selected(selector: str | None, labels: dict[str, str]) -> bool:
    """Whether ``labels`` match a label selector's terms (``k=v``, ``k!=v``, ``k``, ``!k``)."""
    for term in filter(None, (selector or "").split(",")):
        if "!=" in term:
            key, value = term.split("!=", 1)
            ok = labels.get(key) != value
        elif "=" in term:
            key, value = term.split("=", 1)
            ok = labels.get(key.rstrip("=")) == value
        elif term.startswith("!"):
            ok = term[1:] not in labels
        else:
            ok = term in labels
        if not ok:
            return False
    return True


class ClusterMock(kmock.KubernetesEmulator):
    """``KubernetesEmulator`` with what the API does that it does not (see the module)."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.calls: list[tuple[str, str]] = []  # (method, path) of the provider's requests
        self.new_pods: queue.Queue[tuple[str, dict]] = queue.Queue()  # for the kubelet
        self.pod_logs: dict[str, bytes] = {}
        # A command's last word -> (exit code, stdout, stderr); others print their argv.
        self.exec_answers: dict[str, tuple[int, bytes, bytes]] = {}
        self.executed: list[list[str]] = []
        self.helper_node: HelperNode | None = None  # runs helper Pods (``helpernode``)
        self._versions = itertools.count(1)
        for resource in RESOURCES.values():
            self.resources[resource] = kmock.ResourceInfo(namespaced=True)

    async def _handle(self, request: kmock.Request) -> Any:
        # kmock keeps every request served and matches each new one against that history
        # (for filters with slices, ``kmock['get'][:1]``): a cost that grows with every
        # request. These tests use no such filter, so only the request in hand is kept; the
        # provider's are counted in ``calls``.
        del self._requests[:-1]
        if request.headers.get("User-Agent") != TEST_AGENT:
            self.calls.append((str(request.method.value), request.url.path))
        if request.subresource in ("exec", "attach") and self.helper_node is not None:
            pod = await super()._serve_fetch(request)  # 404 when there is no Pod
            if (pod["metadata"].get("labels") or {}).get(LABEL_ROLE) == HELPER_ROLE:
                assert request._raw_request is not None
                serve = getattr(self.helper_node, request.subresource)
                return await serve(request._raw_request, pod)
        if request.subresource == "exec":
            return await self._exec(request)
        is_pod = request.resource is not None and request.resource.plural == "pods"
        if is_pod and request.action == kmock.action.DELETE and self.helper_node is not None:
            await self.helper_node.deleted(request.name or "")
        created = request.action == kmock.action.CREATE and isinstance(request.data, dict)
        if created:
            self._stamp(request.data, request.namespace)
        response = await super()._handle(request)
        if created and is_pod and response.status in (200, 201):
            self.new_pods.put((request.namespace or "", request.data))
        return response

    def _stamp(self, manifest: dict[str, Any], namespace: str | None) -> None:
        meta = manifest.setdefault("metadata", {})
        meta.setdefault("namespace", namespace)
        meta["uid"] = str(uuid.uuid4())
        meta["resourceVersion"] = str(next(self._versions))
        meta["creationTimestamp"] = _now()

    async def _serve_list(self, request: kmock.Request) -> Any:
        listed = await super()._serve_list(request)
        selector = request.params.get("labelSelector")
        items = [
            item
            for item in listed["items"]
            if selected(selector, (item.get("metadata") or {}).get("labels") or {})
        ]
        if "as=PartialObjectMetadataList" in request.headers.get("Accept", ""):
            items = [{"kind": "PartialObjectMetadata", "metadata": i["metadata"]} for i in items]
            return {"kind": "PartialObjectMetadataList", "metadata": {}, "items": items}
        return {**listed, "items": items}

    async def _exec(self, request: kmock.Request) -> Any:
        await super()._serve_fetch(request)  # 404 when there is no Pod
        assert request._raw_request is not None
        command = request._raw_request.query.getall("command", [])
        self.executed.append(command)
        code, out, err = self.exec_answers.get(command[-1], (0, " ".join(command).encode(), b""))
        socket = aiohttp.web.WebSocketResponse(protocols=("v4.channel.k8s.io",))
        await socket.prepare(request._raw_request)
        for channel, data in ((1, out), (2, err)):
            if data:
                await socket.send_bytes(bytes([channel]) + data)
        await socket.send_bytes(bytes([3]) + json.dumps(exit_status(code)).encode())
        await socket.close()
        return socket

    async def _serve_fetch(self, request: kmock.Request) -> Any:
        if request.subresource == "log":
            found = await super()._serve_fetch(request)  # 404 when there is no Pod
            return self.pod_logs.get(found["metadata"]["name"], b"")
        return await super()._serve_fetch(request)


class MockCluster:
    """The mock server on its own event loop in a thread, for synchronous clients."""

    def __init__(self) -> None:
        self.handler: ClusterMock | None = None
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="kmock", daemon=True)

    def __enter__(self) -> MockCluster:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the Kubernetes API mock did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def _run(self) -> None:
        self._loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with ClusterMock() as handler, kmock.Server(handler) as server:
            self.handler, self.url = handler, str(server.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()

    @property
    def mock(self) -> ClusterMock:
        assert self.handler is not None
        return self.handler

    def kubeconfig(self, path: Path, namespace: str = "default") -> Path:
        """A kubeconfig that points at the mock (plain HTTP on loopback, a dummy token)."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "mock", "cluster": {"server": self.url}}],
            "users": [{"name": "dev8", "user": {"token": "mock-token"}}],
            "contexts": [
                {
                    "name": "mock",
                    "context": {"cluster": "mock", "user": "dev8", "namespace": namespace},
                }
            ],
            "current-context": "mock",
        }
        path.write_text(yaml.safe_dump(config))
        return path

    def api(self, kubeconfig: Path, namespace: str, test_side: bool = False) -> KubeApi:
        """A client of the mock through the official client, as the provider makes one;
        ``test_side``: the test's own (its requests not counted)."""
        client = kube_config.new_client_from_config(config_file=str(kubeconfig))
        if test_side:
            client.user_agent = TEST_AGENT
        return KubeApi(client, namespace)

    def seed(self, manifest: dict[str, Any]) -> None:
        """Store an object directly (no request), as if made long ago: for large numbers."""
        self._stamp_and_store(manifest)

    def _stamp_and_store(self, manifest: dict[str, Any]) -> None:
        meta = manifest["metadata"]

        async def store() -> None:
            self.mock._stamp(manifest, meta["namespace"])
            key = (RESOURCES[manifest["kind"]], meta["namespace"], meta["name"])
            self.mock.objects[key] = manifest

        asyncio.run_coroutine_threadsafe(store(), self._loop).result(30)

    @contextmanager
    def counting(self) -> Iterator[list[tuple[str, str]]]:
        """The provider's requests made inside the block."""
        start = len(self.mock.calls)
        made: list[tuple[str, str]] = []
        yield made
        made.extend(self.mock.calls[start:])


class Kubelet:
    """Plays the node for every Pod the mock is given: runs it (through the API's ``status``
    subresource), unless its image is in ``unpullable``."""

    def __init__(self, cluster: MockCluster, api: KubeApi) -> None:
        self.cluster, self.api = cluster, api
        self.unpullable: set[str] = set()
        self._addresses = (f"10.42.{n // 250}.{n % 250 + 1}" for n in itertools.count())
        self._thread = threading.Thread(target=self._run, name="kubelet", daemon=True)
        self._stopping = False

    def __enter__(self) -> Kubelet:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping = True
        self.cluster.mock.new_pods.put(("", {}))
        self._thread.join(30)

    def _run(self) -> None:
        while True:
            namespace, pod = self.cluster.mock.new_pods.get()
            if self._stopping:
                return
            if namespace == self.api.namespace:
                self.api.patch("Pod", pod["metadata"]["name"], self.status(pod), sub="status")

    def status(self, pod: dict[str, Any]) -> dict[str, Any]:
        container = pod["spec"]["containers"][0]
        node = self.cluster.mock.helper_node
        if pod["metadata"]["labels"].get(LABEL_ROLE) == HELPER_ROLE and node is not None:
            if container["image"] in self.unpullable:
                return {"status": pending_status(container, "ErrImagePull")}
            return {"status": node.running(pod)}
        if container["image"] in self.unpullable:
            return {"status": pending_status(container, "ErrImagePull")}
        return {"status": running_status(container, next(self._addresses))}


def running_status(container: dict[str, Any], pod_ip: str) -> dict[str, Any]:
    now = _now()
    return {
        "phase": "Running",
        "podIP": pod_ip,
        "startTime": now,
        "conditions": [
            {"type": kind, "status": "True", "lastTransitionTime": now}
            for kind in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
        ],
        "containerStatuses": [
            {
                "name": container["name"],
                "image": container["image"],
                "ready": True,
                "restartCount": 0,
                "started": True,
                "state": {"running": {"startedAt": now}},
            }
        ],
    }


def pending_status(container: dict[str, Any], reason: str) -> dict[str, Any]:
    message = f'failed to pull image "{container["image"]}": not found'
    return {
        "phase": "Pending",
        "conditions": [{"type": "PodScheduled", "status": "True"}],
        "containerStatuses": [
            {
                "name": container["name"],
                "image": container["image"],
                "ready": False,
                "restartCount": 0,
                "state": {"waiting": {"reason": reason, "message": message}},
            }
        ],
    }


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


NAMESPACE = "dev8-tests"


@dataclass
class Cluster:
    """What a test holds of a mock cluster: the provider under test (talking to the mock
    through a kubeconfig), the test's own client (uncounted), and the stand-in kubelet."""

    server: MockCluster
    provider: KubernetesProvider
    api: KubeApi  # the test's own, behind the provider's back
    kubelet: Kubelet
    kubeconfig: Path

    def leftovers(self, workspace_id: str) -> set[str]:
        """Every object of the workspace but its claims."""
        selector = f"{LABEL_WORKSPACE_ID}={workspace_id}"
        return {
            f"{kind} {item['metadata']['name']}"
            for kind in ("Pod", "Secret", "NetworkPolicy")
            for item in self.api.list(kind, selector)
        }


@contextmanager
def mock_cluster(options: ClusterOptions | None = None) -> Iterator[Cluster]:
    options = options or ClusterOptions(namespace=NAMESPACE)
    with tempfile.TemporaryDirectory() as folder, MockCluster() as server:
        kubeconfig = server.kubeconfig(Path(folder) / "kubeconfig", options.namespace)
        provider = KubernetesProvider(
            server.api(kubeconfig, options.namespace), KubernetesSettings(options)
        )
        api = server.api(kubeconfig, options.namespace, test_side=True)
        server.mock.helper_node = HelperNode(server.api(kubeconfig, options.namespace, True))
        with (
            contextlib.closing(server.mock.helper_node),
            Kubelet(server, server.api(kubeconfig, options.namespace, test_side=True)) as node,
        ):
            yield Cluster(server, provider, api, node, kubeconfig)
