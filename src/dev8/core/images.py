"""The names of the images dev8 runs, in one place: workspaces run ``workspace_image()``,
short-lived helper jobs (backup, restore, du...) run ``helper_image()``. The build pipeline
(``dev8.imagebuild``) builds them under these names."""

from __future__ import annotations

import os


def image_tag() -> str:
    """The tag every layer is built under: ``DEV8_IMAGE_TAG``, default ``latest`` (lets two
    checkouts or channels build side by side; shared layers still come from the cache)."""
    return os.environ.get("DEV8_IMAGE_TAG") or "latest"


def workspace_image() -> str:
    """The image workspaces run unless told otherwise."""
    return f"dev8/workspace:{image_tag()}"


def helper_image() -> str:
    """The image of helper jobs on volumes: the base layer. It has tar, zstd, pigz, restic
    and python3, and every engine that runs workspaces has it (no registry needed)."""
    return f"dev8/base:{image_tag()}"


def short_image_id(image_id: str) -> str:
    """The 12 hex digits people see of an image id (``sha256:...`` or bare)."""
    return image_id.removeprefix("sha256:")[:12]
