"""One workspace for the Kubernetes builders' tests: relayed (server mode, as every workspace
on Kubernetes is), with its quotas, secrets and image as the service would pass them."""

from __future__ import annotations

import pytest

from dev8.core.environment import AGENT_TOKEN, IDE_PASSWORD, LOOPBACK_ONLY
from dev8.core.quotas import GIB, quota_environment
from dev8.core.resources import PRESETS
from dev8.providers.base import WorkspaceSpec
from dev8.providers.kubernetes.specs import ClusterOptions


@pytest.fixture
def spec() -> WorkspaceSpec:
    return WorkspaceSpec(
        workspace_id="abc123def456",
        name="demo",
        owner="alice",
        # .invalid: a reserved name, never a real registry
        image="registry.invalid/dev8/workspace@sha256:" + "0" * 64,
        resources=PRESETS["small"],
        env={
            "GITHUB_TOKEN": "ghp_not-a-real-token",
            AGENT_TOKEN: "agent-token",
            IDE_PASSWORD: "ide-password",
            LOOPBACK_ONLY: "1",
            **quota_environment({"home": 30 * GIB}),
        },
        published=("agent",),
    )


@pytest.fixture
def options() -> ClusterOptions:
    return ClusterOptions(namespace="dev8-workspaces", storage_class="fast-ssd")
