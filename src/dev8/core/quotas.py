"""Per-volume size limits: defaults, parsing, and how full is too full. Pure; the agent uses it.

The limits are the seed's "max recommended" sizes. The local Docker engine's volume driver has
no size option; dev8 enforces them with a file system of the quota's size in a sparse image
file where the host allows it and ``DEV8_QUOTA_ENFORCE`` asks for it
(``providers/docker/loopquota``), and always measures and warns.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from dev8.core.errors import InvalidInput

GIB = 1024**3
DEFAULT_QUOTAS: dict[str, int] = {"home": 20 * GIB, "workspace": 100 * GIB}
QUOTA_ROLES = tuple(DEFAULT_QUOTAS)
WARN_AT = 0.80
CRITICAL_AT = 0.95
# The container's own writable layer (apt installs, /tmp) has no size limit on overlay2 over
# ext4; doctor warns beyond this.
WRITABLE_LAYER_WARN = 10 * GIB
MIN_QUOTA = 1024**2  # 1 MiB: anything smaller is a typo, not a limit
MAX_QUOTA = 2**63 - 1  # what an engine's int64 takes
ENFORCEMENT_NOTE = (
    "the local Docker volume driver cannot enforce a size limit by itself; dev8 measures usage "
    "and warns at 80% and 95%, and unless it enforces quotas (DEV8_QUOTA_ENFORCE, see "
    "`dev8 doctor`) a volume can still grow until the host disk is full"
)

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def quota_env_name(role: str) -> str:
    """The container environment variable that carries ``role``'s limit to the agent."""
    return f"DEV8_QUOTA_{role.upper()}_BYTES"


def parse_size(text: str) -> int:
    """Bytes from '30g', '512MiB', '1.5T' or a bare number of bytes (binary units)."""
    match = _SIZE.match(text)
    if not match:
        raise InvalidInput(f"invalid size {text!r}; use e.g. 500m, 30g or 1t")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def parse_quota(text: str) -> int:
    size = parse_size(text)
    if size < MIN_QUOTA:
        raise InvalidInput(f"quota {text!r} is below the 1 MiB minimum")
    return size


def effective_quotas(configured: Mapping[str, int]) -> dict[str, int]:
    """The limits in force: the configured ones over the defaults."""
    return {role: int(configured.get(role, default)) for role, default in DEFAULT_QUOTAS.items()}


def quota_environment(configured: Mapping[str, int]) -> dict[str, str]:
    return {quota_env_name(role): str(v) for role, v in effective_quotas(configured).items()}


def quotas_from_environment(
    env: Mapping[str, str], on_invalid: Callable[[str], None] = lambda _problem: None
) -> dict[str, int]:
    """What the agent reads back; a missing value means the default, a malformed one too,
    after ``on_invalid`` was told why (a member sets their workspace's environment)."""
    found = {}
    for role, default in DEFAULT_QUOTAS.items():
        name = quota_env_name(role)
        text = env.get(name, "").strip()
        if not text:
            continue
        size = _quota_bytes(text)
        if size is None:
            on_invalid(
                f"{name}={text[:40]!r} is not a number of bytes from {MIN_QUOTA} to "
                f"{MAX_QUOTA}; using the default {format_bytes(default)}"
            )
        else:
            found[role] = size
    return effective_quotas(found)


def _quota_bytes(text: str) -> int | None:
    """``text`` as a limit in bytes; None unless a whole number from MIN_QUOTA to MAX_QUOTA."""
    # The length first: int() of thousands of digits raises.
    if not (len(text) <= 19 and text.isascii() and text.isdigit()):
        return None
    size = int(text)
    return size if MIN_QUOTA <= size <= MAX_QUOTA else None


@dataclass(frozen=True)
class QuotaUse:
    role: str
    used: int
    limit: int

    @property
    def fraction(self) -> float:
        return self.used / self.limit if self.limit else 0.0

    @property
    def level(self) -> str:
        """ok, warning (80% and more), critical (95% and more) or over (above the limit)."""
        if self.used > self.limit:
            return "over"
        if self.fraction >= CRITICAL_AT:
            return "critical"
        if self.fraction >= WARN_AT:
            return "warning"
        return "ok"

    def describe(self) -> str:
        used, limit = format_bytes(self.used), format_bytes(self.limit)
        return f"{self.role} {used} of {limit} ({self.percent}%)"

    @property
    def percent(self) -> int:
        return int(self.fraction * 100)

    def warning(self) -> str | None:
        """A one-line warning when 80% or more is used, else None."""
        if self.level == "ok":
            return None
        what = {"warning": "nearly full", "critical": "almost full", "over": "over its limit"}
        return (
            f"{self.role} volume {what[self.level]}: {self.describe()}; "
            f"`dev8 du` shows what uses it, `dev8 clean` empties package caches"
        )


def format_bytes(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"
