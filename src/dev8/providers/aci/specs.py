"""Pure builders for a workspace's Azure objects, tested without Azure: the file shares and
the container group, as the SDK's own models (``group.serialize()`` is the JSON that goes
to Azure Resource Manager, compared with golden files and with the seed's example group).

What differs from the seed's "Production Deployment" group, on purpose:
- no public IP: the group sits in a virtual network subnet and only the agent's port is open
  on its private address; the server relays IDE and SSH through the agent, as everywhere;
- the shares are not mounted as ``/home/dev8`` and ``/workspace`` (SMB has no symbolic
  links, modes or owners: venvs, npm, git and sshd break on it): those are on the group's
  own disk, and each share, mounted under ``SYNC_ROOT``, holds the agent's restic
  repository of its volume, synced at intervals and at SIGTERM, restored at start;
- a third share, for the system volume every backend has, made and not mounted: without a
  volume at ``/var/lib/dev8`` the agent keeps the system state (package records) in the
  home, which is synced with it; the share is reserved for when it has its own repository.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping

from azure.mgmt.containerinstance import models as aci
from azure.mgmt.storage import models as storage

from dev8.core.errors import InvalidInput
from dev8.core.naming import VOLUME_ROLES, container_name, volume_name
from dev8.core.quotas import GIB, QUOTA_ROLES, quota_env_name, quotas_from_environment
from dev8.core.resources import Resources
from dev8.providers.aci.settings import AzureOptions
from dev8.providers.base import PORTS, WorkspaceSpec
from dev8.providers.container import container_environment

CONTAINER = "workspace"  # the group's one container
# Where the shares are mounted, one directory per volume role; the agent finds them there.
SYNC_ROOT = "/mnt/dev8-store"
SYNC_ROOT_ENV = "DEV8_SYNC_ROOT"
SYNC_INTERVAL_ENV = "DEV8_SYNC_INTERVAL_S"
SYNC_PASSWORD_ENV = "DEV8_SYNC_PASSWORD"
# The volumes the agent syncs (``dev8.agent.sync``: its trees), mounted as ``SYNC_ROOT/<role>``.
SYNCED_ROLES = ("home", "workspace")
# ACI opens at most 5 ports on a group's address.
MAX_PORTS = 5
# Variables dev8 sets that hold no secret: plain values, readable in the portal. Every other
# value (the workspace's secrets, tokens, the user's own variables) is a secure value, which
# Azure never shows back.
PLAIN_VARIABLES = frozenset(
    {"ENVIRONMENT_ID", SYNC_ROOT_ENV, SYNC_INTERVAL_ENV, *map(quota_env_name, QUOTA_ROLES)}
)
# Azure's rule for a file share's name: 3 to 63 lower-case letters, digits and single
# hyphens, starting and ending with a letter or digit.
SHARE_NAME = re.compile(r"^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$")
# A share's metadata names must be C# identifiers: no dots, unlike dev8's labels.
META_WORKSPACE, META_OWNER, META_ROLE = "dev8_workspace_id", "dev8_owner", "dev8_role"


def group_name(workspace_id: str) -> str:
    """The container group's name, the Docker container's: from the immutable id."""
    return container_name(workspace_id)


def share_name(workspace_id: str, role: str) -> str:
    """The volume's name, which Azure must accept as a share's; ``InvalidInput`` if not (an
    id from elsewhere with upper-case letters or underscores)."""
    name = volume_name(workspace_id, role)
    if not SHARE_NAME.fullmatch(name):
        raise InvalidInput(
            f"workspace id {workspace_id!r} makes the share name {name!r}, which Azure refuses "
            "(3-63 lower-case letters, digits and single hyphens)"
        )
    return name


def share_sizes(spec: WorkspaceSpec, options: AzureOptions) -> dict[str, int]:
    """Bytes by volume role: the quotas the agent reads from the same environment, so that
    the share enforces them; the system volume has a size of its own."""
    return {**quotas_from_environment(spec.env), "system": options.system_share_bytes}


def share_quota_gib(size: int) -> int:
    """A share's quota is whole GiB: the quota rounded up, at least 1."""
    return max(1, -(-size // GIB))


def file_share(spec: WorkspaceSpec, role: str, size: int) -> storage.FileShare:
    """One volume's share, labelled (metadata) with the workspace that owns it."""
    return storage.FileShare(
        file_share_properties=storage.FileShareProperties(
            share_quota=share_quota_gib(size),
            metadata={META_WORKSPACE: spec.workspace_id, META_OWNER: spec.owner, META_ROLE: role},
        )
    )


def file_shares(spec: WorkspaceSpec, options: AzureOptions) -> dict[str, storage.FileShare]:
    sizes = share_sizes(spec, options)
    return {
        share_name(spec.workspace_id, role): file_share(spec, role, sizes[role])
        for role in VOLUME_ROLES
    }


def group_resources(resources: Resources, options: AzureOptions) -> aci.ResourceRequirements:
    """The size preset as ACI's requests (memory in GB, to its 0.1 steps). A group beyond
    the region's limit is refused here, in one line, rather than by Azure after the shares."""
    memory_gb = round(resources.memory_mb / 1024, 1)
    if resources.cpus > options.max_cpus or memory_gb > options.max_memory_gb:
        raise InvalidInput(
            f"{resources.describe()} is beyond what a container group may have here "
            f"({options.max_cpus:g} CPU, {options.max_memory_gb:g} GB); choose a smaller size"
        )
    return aci.ResourceRequirements(
        requests=aci.ResourceRequests(cpu=resources.cpus, memory_in_gb=memory_gb)
    )


def environment(
    spec: WorkspaceSpec, options: AzureOptions, sync_password: str
) -> list[aci.EnvironmentVariable]:
    """The container's environment: the secrets (and anything not known to be public) as
    secure values, the sync settings for the agent."""
    values = {
        **container_environment(spec),
        SYNC_ROOT_ENV: SYNC_ROOT,
        SYNC_INTERVAL_ENV: str(options.sync_interval_s),
        SYNC_PASSWORD_ENV: sync_password,
    }
    return [
        aci.EnvironmentVariable(name=name, value=value)
        if name in PLAIN_VARIABLES
        else aci.EnvironmentVariable(name=name, secure_value=value)
        for name, value in sorted(values.items())
    ]


def published_ports(spec: WorkspaceSpec) -> list[int]:
    ports = [PORTS[role] for role in PORTS if role in spec.published]
    if len(ports) > MAX_PORTS:
        raise InvalidInput(f"ACI opens at most {MAX_PORTS} ports on a group's address")
    return ports


def container_group(
    spec: WorkspaceSpec, options: AzureOptions, sync_password: str, account_key: str
) -> aci.ContainerGroup:
    """The workspace's group: one container, the shares under ``SYNC_ROOT``, a private
    address in the subnet. ``account_key`` is the storage account's key, which ACI needs to
    mount a share (it has no managed-identity mount): read fresh before every group."""
    ports = published_ports(spec)
    container = aci.Container(
        name=CONTAINER,
        image=spec.image,
        resources=group_resources(spec.resources, options),
        ports=[aci.ContainerPort(port=port, protocol="TCP") for port in ports],
        environment_variables=environment(spec, options, sync_password),
        volume_mounts=[
            aci.VolumeMount(name=role, mount_path=f"{SYNC_ROOT}/{role}") for role in SYNCED_ROLES
        ],
    )
    return aci.ContainerGroup(
        location=options.location,
        os_type="Linux",
        # A crashed container comes back; a stop deletes the group.
        restart_policy="Always",
        containers=[container],
        ip_address=aci.IpAddress(
            type="Private",
            ports=[aci.Port(port=port, protocol="TCP") for port in ports],
            # The SDK's default, for a public DNS label a private address cannot have.
            auto_generated_domain_name_label_scope=None,  # type: ignore[arg-type]
        ),
        subnet_ids=[aci.ContainerGroupSubnetId(id=options.subnet_id)],
        volumes=[_volume(spec.workspace_id, role, options, account_key) for role in SYNCED_ROLES],
        image_registry_credentials=_registry_credentials(options),
        identity=_identity(options),
        tags=_tags(spec),
    )


def _volume(workspace_id: str, role: str, options: AzureOptions, key: str) -> aci.Volume:
    return aci.Volume(
        name=role,
        azure_file=aci.AzureFileVolume(
            share_name=share_name(workspace_id, role),
            storage_account_name=options.storage_account,
            storage_account_key=key,
        ),
    )


def _registry_credentials(options: AzureOptions) -> list[aci.ImageRegistryCredential] | None:
    if options.registry_server is None:
        return None  # a public image
    if options.identity_id is not None:
        return [
            aci.ImageRegistryCredential(
                server=options.registry_server, identity=options.identity_id
            )
        ]
    return [
        aci.ImageRegistryCredential(
            server=options.registry_server,
            username=options.registry_username,
            password=options.registry_password,
        )
    ]


def _identity(options: AzureOptions) -> aci.ContainerGroupIdentity | None:
    if options.identity_id is None:
        return None
    return aci.ContainerGroupIdentity(
        type="UserAssigned",
        user_assigned_identities={options.identity_id: aci.UserAssignedIdentities()},
    )


def _tags(spec: WorkspaceSpec) -> dict[str, str]:
    """Azure tags (any characters but ``<>%&\\?/``): dev8's labels, so that a group is
    found by workspace in the portal and in ``statuses``."""
    return {
        "dev8-workspace-id": spec.workspace_id,
        "dev8-owner": spec.owner,
        "dev8-name": spec.name,
        "dev8-published": ",".join(spec.published),
    }


def without_secrets(group: Mapping) -> dict:
    """A serialised group with every secure value and key blanked: for logs and goldens."""
    clean = copy.deepcopy(dict(group))
    properties = clean.get("properties", {})
    for container in properties.get("containers", []):
        for variable in container.get("properties", {}).get("environmentVariables", []):
            if "secureValue" in variable:
                variable["secureValue"] = "***"
    for volume in properties.get("volumes", []):
        if "storageAccountKey" in volume.get("azureFile", {}):
            volume["azureFile"]["storageAccountKey"] = "***"
    for credential in properties.get("imageRegistryCredentials", []):
        if "password" in credential:
            credential["password"] = "***"
    return clean
