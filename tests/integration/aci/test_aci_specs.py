"""The ACI builders (``dev8.providers.aci.specs``), pure, no Azure: the group and shares as the
SDK's own models serialise them, compared with a golden file and with the seed's example
group ("Production Deployment" in the seed's persistent-workspaces guide).

Regenerate the golden file after an intended change, then review its diff:
``DEV8_UPDATE_GOLDEN=1 .venv/bin/pytest tests/integration/aci -k golden``
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from azure.mgmt.containerinstance import models as aci

from dev8.core.errors import InvalidInput
from dev8.core.quotas import GIB, quota_environment
from dev8.core.resources import PRESETS, Resources
from dev8.providers.aci.keys import record_key, sync_password
from dev8.providers.aci.settings import AzureOptions, aci_settings, check_key
from dev8.providers.aci.specs import (
    SYNC_ROOT,
    container_group,
    file_shares,
    group_resources,
    share_name,
    share_quota_gib,
    without_secrets,
)
from dev8.providers.base import PORTS, WorkspaceSpec
from tests.integration.aci.standin import standin_environment

GOLDEN = Path(__file__).parent / "golden" / "group.json"
OPTIONS = AzureOptions(
    location="westeurope",
    subnet_id="/subscriptions/s/resourceGroups/dev8/providers/Microsoft.Network/"
    "virtualNetworks/dev8/subnets/workspaces",
    storage_account="dev8storage",
    registry_server="dev8registry.azurecr.io",
    identity_id="/subscriptions/s/resourceGroups/dev8/providers/"
    "Microsoft.ManagedIdentity/userAssignedIdentities/dev8-pull",
)
# The seed's example, verbatim but for the GITHUB_TOKEN it elides.
SEED_GROUP = {
    "containers": [
        {
            "name": "workspace",
            "properties": {
                "image": "dev8registry.azurecr.io/dev8-workspace:latest",
                "resources": {"requests": {"cpu": 2, "memoryInGB": 4}},
                "ports": [{"port": 8080}, {"port": 2222}, {"port": 9000}],
                "environmentVariables": [
                    {"name": "ENVIRONMENT_ID", "value": "user-12345"},
                    {"name": "GITHUB_TOKEN", "secureValue": "..."},
                ],
            },
        }
    ],
    "volumes": [
        {"name": "home", "azureFile": {"shareName": "user-12345-home"}},
        {"name": "workspace", "azureFile": {"shareName": "user-12345-workspace"}},
    ],
}


def _spec(published: tuple[str, ...] = ("agent",)) -> WorkspaceSpec:
    return WorkspaceSpec(
        workspace_id="0123456789ab",
        name="demo",
        owner="alice",
        image="dev8registry.azurecr.io/dev8-workspace:latest",
        resources=PRESETS["small"],
        env={"GITHUB_TOKEN": "ghp_secret", **quota_environment({})},
        published=published,
    )


def _group(published: tuple[str, ...] = ("agent",)) -> dict:
    group = container_group(_spec(published), OPTIONS, "restic-password", "account-key")
    serialised: dict = group.serialize()
    return serialised


def test_the_group_matches_the_golden_file():
    shown = without_secrets(_group())
    if os.environ.get("DEV8_UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(shown, indent=2, sort_keys=True) + "\n")
    assert shown == json.loads(GOLDEN.read_text())


def test_the_seed_group_is_reproduced_where_the_design_keeps_it():
    """Kept: one container "workspace", the image from the registry, 2 CPU and 4 GB (the
    ``small`` preset, dev8's default), ports 8080, 2222 and 9000 when all are published,
    ``ENVIRONMENT_ID`` as a plain value and ``GITHUB_TOKEN`` as a secure one, one Azure
    Files volume per volume role on the storage account, named ``home`` and ``workspace``."""
    properties = _group(tuple(PORTS))["properties"]
    ours, seed = properties["containers"][0], SEED_GROUP["containers"][0]
    assert ours["name"] == seed["name"]
    assert ours["properties"]["image"] == seed["properties"]["image"]
    assert ours["properties"]["resources"] == seed["properties"]["resources"]
    assert [p["port"] for p in ours["properties"]["ports"]] == [8080, 2222, 9000]
    variables = {v["name"]: v for v in ours["properties"]["environmentVariables"]}
    assert variables["ENVIRONMENT_ID"] == {"name": "ENVIRONMENT_ID", "value": "0123456789ab"}
    assert set(variables["GITHUB_TOKEN"]) == {"name", "secureValue"}
    volumes = {v["name"]: v["azureFile"] for v in properties["volumes"]}
    for volume in SEED_GROUP["volumes"]:
        assert volumes[volume["name"]]["storageAccountName"] == "dev8storage"
        assert volumes[volume["name"]]["shareName"] == f"dev8-0123456789ab-{volume['name']}"


def test_the_deliberate_differences_from_the_seed_group():
    """Changed on purpose (docs/azure.md, "The seed's group and ours"):
    - no public IP: a private address in the subnet, and in relay mode (the server's) only
      the agent's port 9000 is opened, the server reaching IDE and SSH through it;
    - the shares are mounted under /mnt/dev8-store, not as /home/dev8 and /workspace: SMB
      has no links, modes or owners, so the home lives on the group's own disk and each
      share holds the agent's restic repository of its volume;
    - a third share (the system volume every backend has) is made but not mounted: the
      agent keeps the system state in the home, synced with it;
    - share names from the workspace's immutable id (``dev8-<id>-<role>``), not the user's;
    - the storage account key, which ACI needs to mount a share, and the sync settings."""
    properties = _group()["properties"]
    assert properties["ipAddress"] == {
        "ports": [{"port": 9000, "protocol": "TCP"}],
        "type": "Private",
    }
    assert properties["subnetIds"] == [{"id": OPTIONS.subnet_id}]
    container = properties["containers"][0]["properties"]
    assert [p["port"] for p in container["ports"]] == [9000]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts == {role: f"{SYNC_ROOT}/{role}" for role in ("home", "workspace")}
    assert [v["name"] for v in properties["volumes"]] == ["home", "workspace"]  # as the seed
    assert not any(path in ("/home/dev8", "/workspace") for path in mounts.values())
    variables = {v["name"]: v for v in container["environmentVariables"]}
    assert variables["DEV8_SYNC_ROOT"]["value"] == SYNC_ROOT
    assert variables["DEV8_SYNC_INTERVAL_S"]["value"] == "300"
    assert variables["DEV8_SYNC_PASSWORD"] == {
        "name": "DEV8_SYNC_PASSWORD",
        "secureValue": "restic-password",
    }


def test_secrets_are_secure_values_and_public_settings_plain():
    container = _group()["properties"]["containers"][0]["properties"]
    plain = {v["name"] for v in container["environmentVariables"] if "value" in v}
    assert plain == {
        "ENVIRONMENT_ID",
        "DEV8_SYNC_ROOT",
        "DEV8_SYNC_INTERVAL_S",
        "DEV8_QUOTA_HOME_BYTES",
        "DEV8_QUOTA_WORKSPACE_BYTES",
    }
    secure = {v["name"] for v in container["environmentVariables"] if "secureValue" in v}
    assert {"GITHUB_TOKEN", "DEV8_SYNC_PASSWORD"} <= secure


def test_the_registry_is_pulled_with_the_managed_identity():
    properties = _group()
    assert properties["identity"] == {
        "type": "UserAssigned",
        "userAssignedIdentities": {OPTIONS.identity_id: {}},
    }
    assert properties["properties"]["imageRegistryCredentials"] == [
        {"server": "dev8registry.azurecr.io", "identity": OPTIONS.identity_id}
    ]


def test_the_serialised_group_reads_back_as_the_same_model():
    group = container_group(_spec(), OPTIONS, "p", "k")
    again = aci.ContainerGroup.deserialize(group.serialize())
    assert again.serialize() == group.serialize()


def test_shares_are_sized_from_the_quotas_in_whole_gib():
    spec = _spec()
    spec = WorkspaceSpec(**{**spec.__dict__, "env": quota_environment({"home": 3 * GIB + 1})})
    shares = {name: share.share_quota for name, share in file_shares(spec, OPTIONS).items()}
    assert shares == {
        "dev8-0123456789ab-home": 4,
        "dev8-0123456789ab-workspace": 100,
        "dev8-0123456789ab-system": 10,
    }
    assert share_quota_gib(1) == 1


@pytest.mark.parametrize("workspace_id", ["0123456789ab", "a", "abc-def"])
def test_share_names_are_valid_for_azure(workspace_id: str):
    name = share_name(workspace_id, "workspace")
    assert name == f"dev8-{workspace_id}-workspace" and 3 <= len(name) <= 63


@pytest.mark.parametrize("workspace_id", ["ABC", "a_b", "a--b", "x" * 60])
def test_share_names_azure_refuses_are_refused_first(workspace_id: str):
    with pytest.raises(InvalidInput, match="Azure refuses"):
        share_name(workspace_id, "home")


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        (PRESETS["micro"], (1.0, 2.0)),
        (PRESETS["small"], (2.0, 4.0)),
        (PRESETS["medium"], (4.0, 8.0)),
        (Resources(0.5, 1536), (0.5, 1.5)),
    ],
)
def test_presets_map_to_aci_requests(resources: Resources, expected: tuple[float, float]):
    requests = group_resources(resources, OPTIONS).requests
    assert (requests.cpu, requests.memory_in_gb) == expected


def test_a_size_beyond_the_group_limit_is_refused_in_one_line():
    with pytest.raises(InvalidInput, match="beyond what a container group may have"):
        group_resources(PRESETS["large"], OPTIONS)


def test_the_sync_password_is_derived_per_workspace_and_stable():
    key = "k" * 32
    assert sync_password(key, "a") == sync_password(key, "a")
    assert sync_password(key, "a") != sync_password(key, "b")
    assert sync_password(key, "a") != sync_password("j" * 32, "a")
    assert len(sync_password(key, "a")) == 43
    assert record_key(key) != record_key("j" * 32)
    with pytest.raises(InvalidInput, match="at least 32"):
        check_key("short", "DEV8_ACI_KEY")


def test_settings_name_every_missing_variable(tmp_path: Path):
    with pytest.raises(InvalidInput) as caught:
        aci_settings({"DEV8_ACI_LOCATION": "westeurope"})
    for name in ("SUBSCRIPTION_ID", "RESOURCE_GROUP", "SUBNET_ID", "STORAGE_ACCOUNT", "KEY"):
        assert f"DEV8_ACI_{name}" in caught.value.message
    settings = aci_settings({**standin_environment(tmp_path), "DEV8_ACI_SYNC_INTERVAL_S": "60"})
    assert settings.options.sync_interval_s == 60
    with pytest.raises(InvalidInput, match="REGISTRY_SERVER needs"):
        aci_settings({**standin_environment(tmp_path), "DEV8_ACI_REGISTRY_SERVER": "r.io"})


def test_the_settings_import_no_azure_sdk():
    """The server names ``DEV8_ACI_*`` at every start (``server.settings``): that must not
    load the Azure SDKs, which only ``DEV8_PROVIDER=aci`` imports."""
    import subprocess
    import sys

    code = (
        "import sys, dev8.server.settings, dev8.providers.registry; "
        "print(sorted(m for m in sys.modules if m.startswith('azure')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_registry_makes_the_aci_provider_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    """``DEV8_PROVIDER=aci``: settings checked when the provider is made, Azure not called."""
    from dev8.providers.registry import make_provider

    for name in list(os.environ):
        if name.startswith("DEV8_ACI_"):
            monkeypatch.delenv(name)
    with pytest.raises(InvalidInput, match="DEV8_ACI_SUBSCRIPTION_ID"):
        make_provider("aci")
    for name, value in standin_environment(tmp_path).items():
        monkeypatch.setenv(name, value)
    provider = make_provider("aci")
    assert provider.name == "aci"
    assert provider._api is None  # type: ignore[attr-defined]  # connects at first use
