"""CPU and memory limits: named presets plus explicit values."""

from __future__ import annotations

import re
from dataclasses import dataclass

from dev8.core.errors import InvalidInput


@dataclass(frozen=True)
class Resources:
    cpus: float
    memory_mb: int

    def describe(self) -> str:
        cpus = f"{self.cpus:g}"
        return f"{cpus} CPU, {self.memory_mb / 1024:g} GiB"


PRESETS: dict[str, Resources] = {
    "micro": Resources(cpus=1, memory_mb=2048),
    "small": Resources(cpus=2, memory_mb=4096),
    "medium": Resources(cpus=4, memory_mb=8192),
    "large": Resources(cpus=8, memory_mb=16384),
}
DEFAULT_PRESET = "small"
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mg]i?b?)?\s*$", re.IGNORECASE)


def parse_memory_mb(text: str) -> int:
    """Parse '4g', '4GiB', '512m' or a bare number of MiB."""
    match = _MEMORY.match(text)
    if not match:
        raise InvalidInput(f"invalid memory size {text!r}; use e.g. 512m or 4g")
    value = float(match.group(1))
    unit = (match.group(2) or "m").lower()
    mb = value * 1024 if unit.startswith("g") else value
    if mb < 256:
        raise InvalidInput(f"memory {text!r} is below the 256 MiB a workspace needs")
    return int(mb)


def parse_cpus(text: str) -> float:
    try:
        cpus = float(text)
    except ValueError:
        raise InvalidInput(f"invalid CPU count {text!r}; use a number such as 2 or 0.5") from None
    if not 0.1 <= cpus <= 256:
        raise InvalidInput(f"CPU count {text!r} is out of range (0.1 to 256)")
    return cpus


def resolve_resources(
    preset: str | None = None, cpus: str | None = None, memory: str | None = None
) -> Resources:
    """A preset (default ``small``) with explicit ``cpus``/``memory`` overriding its values."""
    name = preset or DEFAULT_PRESET
    if name not in PRESETS:
        raise InvalidInput(f"unknown size {name!r}; choose one of {', '.join(PRESETS)}")
    base = PRESETS[name]
    return Resources(
        cpus=parse_cpus(cpus) if cpus is not None else base.cpus,
        memory_mb=parse_memory_mb(memory) if memory is not None else base.memory_mb,
    )
