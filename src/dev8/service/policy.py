"""What a server's admin lets members have and ask for (docs/security.md, "Limits between
members"), and the bounds on a workspace's environment that hold for everyone.

The checks are pure: the caller passes the limits (from the server's settings), whether the
one asking is a member, and what the owner already has. A request beyond a limit is
``PolicyRefused`` (403), one line naming the limit and the setting that sets it. Admins are
bound by the port rule and the environment bounds alone: they grant what the limits
withhold (a bigger workspace, another image) by creating or changing it themselves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from dev8.core.errors import InvalidInput, PolicyRefused
from dev8.core.quotas import effective_quotas, format_bytes
from dev8.core.resources import Resources
from dev8.core.workspace import CreateRequest

# A workspace's env, and its secrets, each: these many entries, values, and bytes in all.
# Values are listed on every page of workspaces (env) and sealed in every row (secrets).
MAX_VARIABLES = 100
MAX_VALUE_BYTES = 16 * 1024
MAX_VARIABLES_BYTES = 32 * 1024
FIRST_UNPRIVILEGED_PORT = 1024
# The backup limit a queued backup carries, decided when it was asked for (0: none).
KEEP_AT_MOST = "keep_at_most"


@dataclass(frozen=True)
class Limits:
    """What one member may have; 0 (or an empty ``images``) means no limit."""

    max_workspaces: int = 0
    max_cpus: float = 0
    max_memory_mb: int = 0
    max_quota_bytes: int = 0
    max_kept_backups: int = 0
    pin_ports: bool = True
    images: tuple[str, ...] = ()
    server_port: int = 0  # the API's own port: never a workspace's, for anyone


@dataclass(frozen=True)
class Usage:
    """What the owner has besides the workspace asked for (removed ones whose volumes are
    kept count: they hold disk)."""

    workspaces: int = 0
    quota_bytes: int = 0


@dataclass(frozen=True)
class MemberPolicy:
    """The limits as they apply to one requester: ``member`` False is an admin."""

    limits: Limits
    member: bool
    # How many backups the server keeps of these workspaces (their ids).
    count_kept_backups: Callable[[Sequence[str]], int] = lambda _ids: 0

    def check_create(self, request: CreateRequest, usage: Usage) -> None:
        check_variables("env", request.env)
        check_variables("secrets", request.secrets)
        check_ports(self.limits, request.host_ports, self.member)
        if not self.member:
            return
        check_image(self.limits, request.image)
        check_resources(self.limits, request.resources)
        check_workspace_count(self.limits, usage.workspaces + 1)
        check_quota(self.limits, usage.quota_bytes + quota_bytes(request.quotas))

    def check_resources(self, wanted: Resources, current: Resources) -> None:
        if self.member:
            check_resources(self.limits, wanted, current)

    def check_image(self, image: str | None) -> None:
        """A rebuild's image; None keeps the workspace's own (admitted when it was made)."""
        if self.member and image is not None:
            check_image(self.limits, image)

    def backup_limit(self, kept: int) -> int:
        """The limit a new backup is queued with (0: none), or ``PolicyRefused`` when the
        owner already keeps that many."""
        if not self.member:
            return 0
        check_kept_backups(self.limits, kept + 1)
        return self.limits.max_kept_backups


def quota_bytes(configured: Mapping[str, int]) -> int:
    """A workspace's volume quotas in all (the defaults where none is set)."""
    return sum(effective_quotas(configured).values())


def owner_lock(owner: str) -> str:
    """The lock key under which one owner's usage is counted and added to."""
    return "member-" + hashlib.sha256(owner.encode()).hexdigest()[:32]


# The checks ------------------------------------------------------------------------------
def check_variables(kind: str, values: Mapping[str, str]) -> None:
    if len(values) > MAX_VARIABLES:
        raise InvalidInput(f"{len(values)} {kind} given; a workspace may have {MAX_VARIABLES}")
    total = 0
    for name, value in values.items():
        size = len(value.encode(errors="surrogatepass"))
        if size > MAX_VALUE_BYTES:
            raise InvalidInput(
                f"the value of {name[:40]} is {size} bytes; {kind} values may have "
                f"{MAX_VALUE_BYTES} at most"
            )
        total += size + len(name)
    if total > MAX_VARIABLES_BYTES:
        raise InvalidInput(
            f"{kind} take {total} bytes in all; a workspace's may take {MAX_VARIABLES_BYTES}"
        )


def check_ports(limits: Limits, ports: Mapping[str, int], member: bool) -> None:
    for role, port in ports.items():
        if port < FIRST_UNPRIVILEGED_PORT:
            raise PolicyRefused(
                f"host port {port} ({role}) is privileged; pin one from 1024 to 65535 or none"
            )
        if port == limits.server_port:
            raise PolicyRefused(f"host port {port} ({role}) is the server's own (DEV8_PORT)")
        if member and not limits.pin_ports:
            raise PolicyRefused(
                "members may not pin host ports on this server (DEV8_MEMBER_PIN_PORTS); "
                "leave ide_port and ssh_port out"
            )


def check_image(limits: Limits, image: str) -> None:
    """'' is the server's default image, always allowed."""
    if image and limits.images and image not in limits.images:
        raise PolicyRefused(
            f"image {image[:80]!r} is not one this server offers (DEV8_IMAGES); "
            f"choose one of {', '.join(limits.images)}"
        )


def check_resources(limits: Limits, wanted: Resources, current: Resources | None = None) -> None:
    """Beyond a limit is refused only if it is more than the workspace has now (an admin
    may have granted more)."""
    now = current or Resources(0, 0)
    if limits.max_cpus and wanted.cpus > max(limits.max_cpus, now.cpus):
        raise PolicyRefused(
            f"{wanted.cpus:g} CPUs is more than a member's workspace may have, "
            f"{limits.max_cpus:g} (DEV8_MEMBER_MAX_CPUS)"
        )
    if limits.max_memory_mb and wanted.memory_mb > max(limits.max_memory_mb, now.memory_mb):
        raise PolicyRefused(
            f"{wanted.memory_mb} MiB of memory is more than a member's workspace may have, "
            f"{limits.max_memory_mb} MiB (DEV8_MEMBER_MAX_MEMORY)"
        )


def check_workspace_count(limits: Limits, count: int) -> None:
    if limits.max_workspaces and count > limits.max_workspaces:
        raise PolicyRefused(
            f"a member may have {limits.max_workspaces} workspaces "
            "(DEV8_MEMBER_MAX_WORKSPACES; removed ones count until purged); purge one first"
        )


def check_quota(limits: Limits, total: int) -> None:
    if limits.max_quota_bytes and total > limits.max_quota_bytes:
        raise PolicyRefused(
            f"the quotas of a member's workspaces would come to {format_bytes(total)}, over "
            f"{format_bytes(limits.max_quota_bytes)} (DEV8_MEMBER_MAX_QUOTA); ask for "
            "smaller quotas or purge a workspace"
        )


def check_kept_backups(limits: Limits, count: int) -> None:
    if limits.max_kept_backups and count > limits.max_kept_backups:
        raise PolicyRefused(
            f"a member may keep {limits.max_kept_backups} backups "
            "(DEV8_MEMBER_MAX_KEPT_BACKUPS); delete one first"
        )
