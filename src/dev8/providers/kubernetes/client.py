"""The few REST calls the backend makes, on plain dicts (the manifests as ``specs`` builds
them), through the official client's connection: its kubeconfig and in-cluster loading, its
credential plugins, TLS and retries. The generated typed API is not used: a dict is what the
builders make and the status mapping reads, and decoding 1,000 Pods into models costs more
than the request."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from typing import Any

from kubernetes import client as kube
from kubernetes import config as kube_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from dev8.core.errors import EngineUnavailable

# The path of each kind the backend makes, in a namespace.
PATHS = {
    "Pod": "/api/v1/namespaces/{namespace}/pods",
    "Secret": "/api/v1/namespaces/{namespace}/secrets",
    "PersistentVolumeClaim": "/api/v1/namespaces/{namespace}/persistentvolumeclaims",
    "NetworkPolicy": "/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies",
}
JSON = "application/json"
# Only the objects' metadata, where the server can (every release since 1.15); plain JSON
# from one that cannot. A list of Secrets then carries no secret values.
METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1," + JSON
REQUEST_TIMEOUT_S = 30.0
IN_CLUSTER_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"
DEFAULT_KUBECONFIG = "~/.kube/config"


def connect(context: str | None = None) -> kube.ApiClient:
    """A client for the cluster: the Pod's service account when running in one (and no
    ``KUBECONFIG`` says otherwise), else the kubeconfig's ``context`` (default: current)."""
    try:
        if os.path.exists(IN_CLUSTER_TOKEN) and not os.environ.get("KUBECONFIG"):
            configuration = kube.Configuration()
            kube_config.load_incluster_config(client_configuration=configuration)
            return kube.ApiClient(configuration)
        # Read now, not when the client was imported (its default is fixed at import).
        files = os.environ.get("KUBECONFIG") or DEFAULT_KUBECONFIG
        return kube_config.new_client_from_config(config_file=files, context=context)
    except (ConfigException, OSError) as exc:
        raise EngineUnavailable(
            f"no Kubernetes cluster configured ({exc}); set KUBECONFIG or run in a cluster"
        ) from exc


class KubeApi:
    """Create, read, list, patch and delete objects of ``PATHS``' kinds in one namespace.
    Failures are the client's ``ApiException`` (with the HTTP status) or urllib3's errors;
    ``errors.api_errors`` maps them at the provider's boundary."""

    def __init__(self, api_client: kube.ApiClient, namespace: str) -> None:
        self.api_client = api_client
        self.namespace = namespace

    def path(self, kind: str, name: str | None = None, sub: str | None = None) -> str:
        path = PATHS[kind].format(namespace=self.namespace)
        return path + "".join(f"/{part}" for part in (name, sub) if part)

    def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        return self._json("POST", self.path(manifest["kind"]), body=manifest)

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        """The object, or None if there is none."""
        try:
            return self._json("GET", self.path(kind, name))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def list(
        self, kind: str, selector: str, *, metadata_only: bool = False, limit: int | None = None
    ) -> list[dict]:
        """The objects whose labels match ``selector``: one request, whatever their number
        (or the first ``limit`` of them)."""
        accept = METADATA_ONLY if metadata_only else JSON
        query: dict[str, Any] = {"labelSelector": selector}
        if limit is not None:
            query["limit"] = limit
        found = self._json("GET", self.path(kind), query=query, accept=accept)
        return list(found.get("items") or [])

    def patch(self, kind: str, name: str, patch: dict[str, Any], sub: str | None = None) -> dict:
        return self._json(
            "PATCH",
            self.path(kind, name, sub),
            body=patch,
            content_type="application/merge-patch+json",
        )

    def delete(self, kind: str, name: str, grace_s: int | None = None) -> bool:
        """Ask for the object's deletion; False if there was none (already deleted)."""
        body = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if grace_s is not None:
            body["gracePeriodSeconds"] = grace_s  # type: ignore[assignment]
        try:
            self._json("DELETE", self.path(kind, name), body=body)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def stream(
        self, kind: str, name: str, sub: str, query: Mapping[str, Any], timeout: float | None
    ) -> Iterator[bytes]:
        """A subresource's body as it comes (a Pod's log, followed or not)."""
        response = self._call("GET", self.path(kind, name, sub), query=query, timeout=timeout)
        try:
            yield from response.response.stream(64 * 1024)
        finally:
            response.response.release_conn()

    def version(self) -> dict[str, Any]:
        return self._json("GET", "/version")

    # The one place requests are made -------------------------------------------------------
    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self._call(method, path, **kwargs)
        data = response.read()
        return json.loads(data) if data else {}

    def _call(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        accept: str = JSON,
        content_type: str = JSON,
        timeout: float | None = REQUEST_TIMEOUT_S,
    ) -> Any:
        headers = {"Accept": accept}
        if body is not None:
            headers["Content-Type"] = content_type
        request = self.api_client.param_serialize(
            method,
            path,
            query_params=[(key, _query_value(value)) for key, value in (query or {}).items()],
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api_client.call_api(*request, _request_timeout=timeout)
        if not 200 <= response.status <= 299:
            response.read()
            raise ApiException(http_resp=response)
        return response


def _query_value(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)
