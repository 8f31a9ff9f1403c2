"""What a build is asked to do and how it reports progress: plain definitions, no engine, so
that the CLI can load them (and parse its options) without importing the docker SDK."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dev8.imagebuild.layers import Layer

AUTO_BASE = "auto"
PULLABLE_DEFAULT_BASE = "debian:bookworm-slim"
BOOTSTRAP_BASE = "bootstrap"


@dataclass
class BuildOptions:
    base: str = AUTO_BASE
    extra_ca: Path | None = None
    mirror: str | None = None
    build_args: dict[str, str] = field(default_factory=dict)
    layers: tuple[str, ...] = ()  # build only up to the last of these (default: all)
    no_cache: bool = False


@dataclass
class LayerResult:
    layer: Layer
    image_id: str
    seconds: float
    cached: bool


class BuildProgress:
    """Callbacks the CLI implements to show progress."""

    def message(self, text: str) -> None: ...
    def layer_started(self, layer: Layer, index: int, total: int) -> None: ...
    def step(self, layer: Layer, text: str) -> None: ...
    def layer_finished(self, result: LayerResult) -> None: ...
