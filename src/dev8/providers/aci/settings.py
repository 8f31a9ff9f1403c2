"""The ACI backend's settings, from ``DEV8_ACI_*`` environment variables, read once when the
provider is made. Azure credentials come from the standard places (azure-identity's
``DefaultAzureCredential``: the server's managed identity on Azure, ``AZURE_CLIENT_ID``,
``AZURE_TENANT_ID`` and ``AZURE_CLIENT_SECRET`` elsewhere, or ``az login``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dev8.core.errors import InvalidInput
from dev8.core.quotas import parse_size
from dev8.paths import data_dir
from dev8.providers.aci.keys import check_key
from dev8.providers.aci.specs import DEFAULT_SYNC_INTERVAL_S, DEFAULT_SYSTEM_SHARE, AzureOptions

PREFIX = "DEV8_ACI_"
REQUIRED = ("SUBSCRIPTION_ID", "RESOURCE_GROUP", "LOCATION", "SUBNET_ID", "STORAGE_ACCOUNT", "KEY")
ENDPOINT = "https://management.azure.com"  # Azure Resource Manager, the public cloud
# A new group pulls a large image and mounts three shares: minutes, not seconds.
DEFAULT_START_TIMEOUT_S = 900.0
DEFAULT_POLL_S = 5.0  # between two looks at an operation when Azure gives no Retry-After


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
