"""The ACI backend's settings, from ``DEV8_ACI_*`` environment variables, read once when the
provider is made; no Azure SDK is imported here (the server's settings name these variables
at every start). Azure credentials come from the standard places (azure-identity's
``DefaultAzureCredential``: the server's managed identity on Azure, ``AZURE_CLIENT_ID``,
``AZURE_TENANT_ID`` and ``AZURE_CLIENT_SECRET`` elsewhere, or ``az login``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dev8.core.errors import InvalidInput
from dev8.core.quotas import GIB, parse_size
from dev8.paths import data_dir

PREFIX = "DEV8_ACI_"
REQUIRED = ("SUBSCRIPTION_ID", "RESOURCE_GROUP", "LOCATION", "SUBNET_ID", "STORAGE_ACCOUNT", "KEY")
OPTIONAL = (
    "REGISTRY_SERVER",
    "REGISTRY_USERNAME",
    "REGISTRY_PASSWORD",
    "IDENTITY_ID",
    "SYNC_INTERVAL_S",
    "SYSTEM_SHARE",
    "MAX_CPUS",
    "MAX_MEMORY_GB",
    "RECORDS_DIR",
    "ENDPOINT",
    "START_TIMEOUT",
)
VARIABLES = tuple(PREFIX + name for name in REQUIRED + OPTIONAL)
DEFAULT_SYNC_INTERVAL_S = 300
DEFAULT_SYSTEM_SHARE = 10 * GIB  # as the Kubernetes system claim: .deb records, no quota
MIN_KEY_LENGTH = 32
ENDPOINT = "https://management.azure.com"  # Azure Resource Manager, the public cloud
# A new group pulls a large image and mounts three shares: minutes, not seconds.
DEFAULT_START_TIMEOUT_S = 900.0
DEFAULT_POLL_S = 5.0  # between two looks at an operation when Azure gives no Retry-After


@dataclass(frozen=True)
class AzureOptions:
    """Where and how a deployment puts workspaces; the same for every workspace."""

    location: str
    subnet_id: str  # delegated to Microsoft.ContainerInstance/containerGroups
    storage_account: str
    registry_server: str | None = None
    registry_username: str | None = None
    registry_password: str | None = None
    # A user-assigned managed identity (its resource id) that may pull from the registry
    # (AcrPull): no registry password anywhere.
    identity_id: str | None = None
    sync_interval_s: int = DEFAULT_SYNC_INTERVAL_S
    system_share_bytes: int = DEFAULT_SYSTEM_SHARE
    max_cpus: float = 4.0  # ACI's per-group limit in most regions (docs/azure.md)
    max_memory_gb: float = 16.0


@dataclass(frozen=True)
class AciSettings:
    subscription_id: str
    resource_group: str
    options: AzureOptions
    key: str  # DEV8_ACI_KEY: the restic passwords and the records' seal derive from it
    records_dir: Path
    endpoint: str = ENDPOINT
    start_timeout_s: float = DEFAULT_START_TIMEOUT_S
    poll_s: float = DEFAULT_POLL_S


def aci_settings(environ: Mapping[str, str] | None = None) -> AciSettings:
    """``InvalidInput`` naming every missing required variable at once."""
    env = os.environ if environ is None else environ

    def get(name: str) -> str | None:
        return (env.get(PREFIX + name) or "").strip() or None

    missing = [PREFIX + name for name in REQUIRED if not get(name)]
    if missing:
        raise InvalidInput(
            f"the ACI backend needs {', '.join(missing)} (docs/azure.md, the server's settings)"
        )
    options = AzureOptions(
        location=str(get("LOCATION")),
        subnet_id=str(get("SUBNET_ID")),
        storage_account=str(get("STORAGE_ACCOUNT")),
        registry_server=get("REGISTRY_SERVER"),
        registry_username=get("REGISTRY_USERNAME"),
        registry_password=get("REGISTRY_PASSWORD"),
        identity_id=get("IDENTITY_ID"),
        sync_interval_s=int(
            _number(get("SYNC_INTERVAL_S"), DEFAULT_SYNC_INTERVAL_S, "SYNC_INTERVAL_S")
        ),
        system_share_bytes=_size(get("SYSTEM_SHARE"), DEFAULT_SYSTEM_SHARE, "SYSTEM_SHARE"),
        max_cpus=_number(get("MAX_CPUS"), AzureOptions.max_cpus, "MAX_CPUS"),
        max_memory_gb=_number(get("MAX_MEMORY_GB"), AzureOptions.max_memory_gb, "MAX_MEMORY_GB"),
    )
    if options.registry_server and not options.identity_id and not options.registry_username:
        raise InvalidInput(
            f"{PREFIX}REGISTRY_SERVER needs {PREFIX}IDENTITY_ID (a managed identity with "
            f"AcrPull) or {PREFIX}REGISTRY_USERNAME and {PREFIX}REGISTRY_PASSWORD"
        )
    return AciSettings(
        subscription_id=str(get("SUBSCRIPTION_ID")),
        resource_group=str(get("RESOURCE_GROUP")),
        options=options,
        key=check_key(str(get("KEY")), PREFIX + "KEY"),
        records_dir=Path(get("RECORDS_DIR") or data_dir() / "aci"),
        endpoint=get("ENDPOINT") or ENDPOINT,
        start_timeout_s=_number(get("START_TIMEOUT"), DEFAULT_START_TIMEOUT_S, "START_TIMEOUT"),
    )


def check_key(key: str, variable: str) -> str:
    if len(key.strip()) < MIN_KEY_LENGTH:
        raise InvalidInput(
            f"{variable} must be a secret of at least {MIN_KEY_LENGTH} characters; "
            "generate one with `dev8 server keygen`"
        )
    return key.strip()


def _number(text: str | None, default: float, name: str) -> float:
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < 1e9:
        raise InvalidInput(f"{PREFIX}{name}={text[:40]} must be a positive number")
    return value


def _size(text: str | None, default: int, name: str) -> int:
    if text is None:
        return default
    try:
        return parse_size(text)
    except InvalidInput as exc:
        raise InvalidInput(f"{PREFIX}{name}: {exc.message}") from exc
