"""The image layers, in build order. Pure data plus the location of their Dockerfiles."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from dev8.core.images import image_tag, workspace_image

__all__ = ["LAYERS", "Layer", "image_tag", "workspace_image"]


@dataclass(frozen=True)
class Layer:
    name: str
    repository: str
    summary: str

    @property
    def tag(self) -> str:
        return f"{self.repository}:{image_tag()}"


LAYERS: tuple[Layer, ...] = (
    Layer("base", "dev8/base", "OS, dev8 user, SSH server, core tools, extra CA"),
    Layer("languages", "dev8/languages", "Node.js 20, Python 3, Go, Rust"),
    Layer("ide", "dev8/ide", "code-server"),
    Layer("workspace", "dev8/workspace", "dev8 agent, SSH and shell configuration, entrypoint"),
)


def images_dir() -> Path:
    """The folder holding one sub-folder per layer.

    Installed wheels carry it as package data (``dev8/images``); a source checkout has it at
    the repository root.
    """
    packaged = Path(str(resources.files("dev8"))) / "images"
    if (packaged / "base" / "Dockerfile").is_file():
        return packaged
    return Path(__file__).resolve().parents[3] / "images"


def build_args(layer: Layer, from_image: str, extra: dict[str, str]) -> dict[str, str]:
    """Build arguments for ``layer``: its parent image plus user-given arguments."""
    key = "BASE_IMAGE" if layer.name == "base" else "FROM_IMAGE"
    return {key: from_image, **extra}
