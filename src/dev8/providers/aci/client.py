"""The two Azure Resource Manager clients the backend uses, made in one place: the container
groups (``azure-mgmt-containerinstance``) and the storage account's file shares and keys
(``azure-mgmt-storage``), with one credential and one endpoint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from azure.core.credentials import TokenCredential
from azure.mgmt.containerinstance import ContainerInstanceManagementClient
from azure.mgmt.storage import StorageManagementClient

from dev8.providers.aci.settings import AciSettings


@dataclass
class AzureApi:
    groups: ContainerInstanceManagementClient
    storage: StorageManagementClient


def make_api(
    credential: TokenCredential, subscription_id: str, endpoint: str, **transport: Any
) -> AzureApi:
    """Clients at ``endpoint``; ``transport`` goes to azure-core (``connection_verify``: a CA
    bundle, ``polling_interval``: seconds between looks at an operation)."""
    return AzureApi(
        groups=ContainerInstanceManagementClient(
            credential, subscription_id, base_url=endpoint, **transport
        ),
        storage=StorageManagementClient(
            credential, subscription_id, base_url=endpoint, **transport
        ),
    )


def connect(settings: AciSettings) -> AzureApi:
    """Clients with azure-identity's default credential chain (managed identity on Azure)."""
    from azure.identity import DefaultAzureCredential

    return make_api(
        DefaultAzureCredential(),
        settings.subscription_id,
        settings.endpoint,
        polling_interval=settings.poll_s,
    )
