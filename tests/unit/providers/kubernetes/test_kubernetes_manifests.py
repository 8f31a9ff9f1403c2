"""Every manifest the Kubernetes builders make, validated against the API's schemas of
Kubernetes 1.30 and of the newest version ``kubernetes-validate`` ships (strict: an unknown
field is an error), and compared with the golden files under ``golden/``.

Schemas, not a cluster: the package carries them (no download at run time, proven below), and
they check structure and types, not the API server's semantic rules (name formats, quantities,
label syntax), which ``test_kubernetes_specs.py`` checks.

Regenerate the golden files after an intended change, then review their diff:
``DEV8_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/providers/kubernetes -k golden``
"""

from __future__ import annotations

import os
import socket
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_validate import utils as kubernetes_schemas

from dev8.providers.base import PORTS, WorkspaceSpec
from dev8.providers.kubernetes.specs import ClusterOptions, workspace_manifests

GOLDEN = Path(__file__).parent / "golden"
OLDEST_SUPPORTED = "1.30"
VERSIONS = (OLDEST_SUPPORTED, kubernetes_schemas.latest_version())
# What an option changes in the manifests: each variant is validated on its own.
VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "storage class": {"storage_class": "fast-ssd"},
    "server in another namespace": {"server_namespace": "dev8-system"},
    "no private ranges blocked": {"blocked_egress": ()},
}


def _golden_name(manifest: dict[str, Any]) -> str:
    return f"{manifest['kind'].lower()}-{manifest['metadata']['name']}.yaml"


def test_the_newest_schemas_are_newer_than_the_oldest_supported():
    assert VERSIONS[1] > OLDEST_SUPPORTED, VERSIONS


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("variant", VARIANTS)
def test_every_manifest_is_valid(spec: WorkspaceSpec, version: str, variant: str):
    options = ClusterOptions(**VARIANTS[variant])
    for published in (("agent",), tuple(PORTS)):
        for manifest in workspace_manifests(replace(spec, published=published), options):
            kubernetes_schemas.validate(manifest, version, strict=True)


@pytest.mark.parametrize("version", VERSIONS)
def test_the_schemas_refuse_what_the_api_would(spec: WorkspaceSpec, version: str):
    """The validation has teeth: an unknown field and a wrong type are refused."""
    pod = workspace_manifests(spec, ClusterOptions())[-1]
    pod["spec"]["containers"][0]["capabilites"] = {}
    with pytest.raises(kubernetes_schemas.ValidationError, match="capabilites"):
        kubernetes_schemas.validate(pod, version, strict=True)
    claim = workspace_manifests(spec, ClusterOptions())[0]
    claim["spec"]["accessModes"] = "ReadWriteOnce"
    with pytest.raises(kubernetes_schemas.ValidationError):
        kubernetes_schemas.validate(claim, version, strict=True)


def test_validation_needs_no_network(
    spec: WorkspaceSpec, options: ClusterOptions, monkeypatch: pytest.MonkeyPatch
):
    """The schemas are files in the package: validating with every connection refused works."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a connection was attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    for manifest in workspace_manifests(spec, options):
        kubernetes_schemas.validate(manifest, VERSIONS[1], strict=True)


def test_manifests_match_the_golden_files(spec: WorkspaceSpec, options: ClusterOptions):
    manifests = workspace_manifests(spec, options)
    if os.environ.get("DEV8_UPDATE_GOLDEN") == "1":
        for stale in GOLDEN.glob("*.yaml"):
            stale.unlink()
        for manifest in manifests:
            text = yaml.safe_dump(manifest, sort_keys=False, default_flow_style=False)
            (GOLDEN / _golden_name(manifest)).write_text(text)
    expected = {path.name: yaml.safe_load(path.read_text()) for path in GOLDEN.glob("*.yaml")}
    assert sorted(expected) == sorted(_golden_name(m) for m in manifests), (
        "the builders make other objects than golden/ holds; regenerate (see the docstring)"
    )
    for manifest in manifests:
        assert manifest == expected[_golden_name(manifest)], _golden_name(manifest)


@pytest.mark.parametrize("version", VERSIONS)
def test_the_workspace_record_and_the_pod_it_carries_are_valid(spec: WorkspaceSpec, version: str):
    """The provider's Secret (the builders' one, annotated with the Pod ``start`` makes)."""
    from dev8.providers.kubernetes.records import stored_pod, workspace_record

    record = workspace_record(spec, ClusterOptions())
    kubernetes_schemas.validate(record, version, strict=True)
    kubernetes_schemas.validate(stored_pod(record), version, strict=True)
