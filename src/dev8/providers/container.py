"""What a workspace's container is given on every backend, whatever the engine runs it: its
environment, its Linux capabilities and the size of its memory-backed ``/run``. One definition
here, so that a Docker container and a Kubernetes Pod can never drift apart."""

from __future__ import annotations

from dev8.providers.base import WorkspaceSpec

# The role labels (``dev8.core.naming.LABEL_ROLE``) of a workspace's container (a Pod on
# Kubernetes) and of what isolates its network (a Docker network, a NetworkPolicy).
CONTAINER_ROLE = "container"
NETWORK_ROLE = "network"

# What root in a workspace needs: dpkg and the agent (CHOWN, DAC_OVERRIDE, FOWNER, FSETID),
# sudo, su and sshd's privilege separation (SETUID, SETGID, SYS_CHROOT, AUDIT_WRITE), signals
# to the user's processes (KILL) and servers on low ports (NET_BIND_SERVICE). Docker's default
# set also has NET_RAW (forged packets, ARP spoofing on the bridge), MKNOD, SETFCAP and SETPCAP,
# which nothing in a workspace needs. No ``no-new-privileges``: it would break sudo.
CAPABILITIES = (
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "NET_BIND_SERVICE",
    "SETGID",
    "SETUID",
    "SYS_CHROOT",
)
# /run is memory-backed: the agent puts secrets there (GitHub token, SSH keys from the
# environment) and they must never land on a volume or the container's disk.
RUN_DIR = "/run"
RUN_SIZE_MIB = 64


def container_environment(spec: WorkspaceSpec) -> dict[str, str]:
    """The container's environment: what the service put in the spec (settings, secrets,
    quotas), and the workspace's id under the seed's name."""
    return {**spec.env, "ENVIRONMENT_ID": spec.workspace_id}
