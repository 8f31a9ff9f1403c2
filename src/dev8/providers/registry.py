"""Choosing the provider: ``DEV8_PROVIDER`` (default ``docker``) names a backend, which is
imported only when asked for, so a command never loads an engine's SDK it does not use."""

from __future__ import annotations

import importlib
import os

from dev8.core.errors import InvalidInput
from dev8.providers.base import Provider

# name -> "module:class"; a new backend is one line here and passes tests/contract.
BACKENDS = {
    "docker": "dev8.providers.docker.provider:DockerProvider",
    "kubernetes": "dev8.providers.kubernetes.provider:KubernetesProvider",
    "aci": "dev8.providers.aci.provider:AciProvider",
}

# name -> "module:class" of a light read-only view (no SDK), for commands that only look.
READERS = {"docker": "dev8.providers.docker.reads:EngineReader"}


def provider_name() -> str:
    return os.environ.get("DEV8_PROVIDER") or "docker"


def make_provider(name: str | None = None) -> Provider:
    """A new provider of the backend ``name`` (default: ``provider_name()``)."""
    chosen = name or provider_name()
    target = BACKENDS.get(chosen)
    if target is None:
        raise InvalidInput(
            f"unknown provider {chosen!r} (DEV8_PROVIDER); available: {', '.join(BACKENDS)}"
        )
    return _instance(target)


def make_reader() -> Provider | None:
    """The chosen backend's read-only view, or None when it has none. It raises
    ``ReaderUnavailable`` for what it cannot answer, and never changes anything."""
    target = READERS.get(provider_name())
    return _instance(target) if target else None


def _instance(target: str) -> Provider:
    module, _, cls = target.partition(":")
    provider: Provider = getattr(importlib.import_module(module), cls)()
    return provider
