"""``dev8 image build``: build the layers in order, each on top of the previous one."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import docker
from docker.errors import APIError, BuildError, DockerException

from dev8.core.errors import ImageBuildFailed, ImageNotFound
from dev8.imagebuild.bootstrap import bootstrap_base, find_image
from dev8.imagebuild.ca import read_ca_certificates, write_ca_directory
from dev8.imagebuild.layers import LAYERS, Layer, build_args, images_dir
from dev8.imagebuild.options import (
    AUTO_BASE,
    BOOTSTRAP_BASE,
    PULLABLE_DEFAULT_BASE,
    BuildOptions,
    BuildProgress,
    LayerResult,
)
from dev8.paths import logs_dir


def resolve_base(
    client: docker.DockerClient, options: BuildOptions, report: Callable[[str], None]
) -> str:
    """The image the base layer is built on: given, pulled, or bootstrapped with debootstrap."""
    if options.base == BOOTSTRAP_BASE:
        return bootstrap_base(client, report, mirror=options.mirror)
    wanted = PULLABLE_DEFAULT_BASE if options.base == AUTO_BASE else options.base
    if find_image(client, wanted):
        return wanted
    try:
        report(f"pulling {wanted}")
        client.images.pull(wanted)
        return wanted
    except DockerException as exc:
        if options.base != AUTO_BASE:
            raise ImageNotFound(
                f"cannot pull base image {wanted} ({_first_line(exc)}); "
                "use --base auto to bootstrap Debian with debootstrap instead"
            ) from exc
    report("no registry answers; using a Debian base made with debootstrap")
    return bootstrap_base(client, report, mirror=options.mirror)


def build_all(
    client: docker.DockerClient, options: BuildOptions, progress: BuildProgress
) -> list[LayerResult]:
    layers = _selected_layers(options.layers)
    parent = resolve_base(client, options, progress.message)
    certificates = read_ca_certificates(options.extra_ca) if options.extra_ca else []
    results = []
    log_path = logs_dir() / "image-build.log"
    with log_path.open("w") as log:
        for index, layer in enumerate(layers, start=1):
            progress.layer_started(layer, index, len(layers))
            result = _build_layer(client, layer, parent, options, certificates, progress, log)
            progress.layer_finished(result)
            results.append(result)
            parent = layer.tag
    return results


def _selected_layers(names: tuple[str, ...]) -> tuple[Layer, ...]:
    if not names:
        return LAYERS
    known = [layer.name for layer in LAYERS]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ImageBuildFailed(f"unknown layer {unknown[0]!r}; layers are {', '.join(known)}")
    last = max(known.index(name) for name in names)
    return LAYERS[: last + 1]


def _build_layer(
    client: docker.DockerClient,
    layer: Layer,
    parent: str,
    options: BuildOptions,
    certificates: list[str],
    progress: BuildProgress,
    log,
) -> LayerResult:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"dev8-{layer.name}-") as tmp:
        context = Path(tmp) / layer.name
        shutil.copytree(images_dir() / layer.name, context)
        _add_context_extras(layer, context, certificates)
        image_id, cached = _stream_build(
            client,
            layer,
            context,
            build_args(layer, parent, options.build_args),
            options.no_cache,
            progress,
            log,
        )
    return LayerResult(layer, image_id, time.monotonic() - started, cached)


def _add_context_extras(layer: Layer, context: Path, certificates: list[str]) -> None:
    if layer.name == "base":
        write_ca_directory(certificates, context / "extra-ca")
        (context / "extra-ca" / "README").write_text("certificates from --extra-ca\n")
    if layer.name == "workspace":
        _copy_agent_sources(context / "agent" / "dev8")


def _copy_agent_sources(target: Path) -> None:
    """The agent imports only ``dev8.core`` and ``dev8.agent``: copy exactly those."""
    package = Path(__file__).resolve().parents[1]
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    target.mkdir(parents=True)
    shutil.copy2(package / "__init__.py", target / "__init__.py")
    for sub in ("core", "agent"):
        shutil.copytree(package / sub, target / sub, ignore=ignore)


def _stream_build(client, layer, context, args, no_cache, progress, log) -> tuple[str, bool]:
    cacheable = cached_steps = 0
    costly = False
    tail: list[str] = []
    image_id = ""
    try:
        stream = client.api.build(
            path=str(context),
            tag=layer.tag,
            buildargs=args,
            rm=True,
            forcerm=True,
            nocache=no_cache,
            decode=True,
            labels={"dev.dev8.layer": layer.name},
        )
        for chunk in stream:
            if "error" in chunk:
                raise ImageBuildFailed(
                    f"layer {layer.name} failed: {chunk['error'].strip()} (full log: {log.name})"
                )
            text = chunk.get("stream", "")
            if text:
                log.write(text)
                tail = (tail + text.splitlines())[-20:]
                for line in text.splitlines():
                    if line.startswith("Step "):
                        instruction = line.partition(" : ")[2].split(" ", 1)[0].upper()
                        costly = instruction in ("RUN", "COPY", "ADD")
                        cacheable += costly
                        progress.step(layer, line)
                    elif "Using cache" in line:
                        cached_steps += costly
                    elif line.strip():
                        progress.step(layer, line.strip())
            if "aux" in chunk and "ID" in chunk["aux"]:
                image_id = chunk["aux"]["ID"]
    except (APIError, BuildError) as exc:
        raise ImageBuildFailed(f"layer {layer.name} failed: {_first_line(exc)}") from exc
    if not image_id:
        image_id = client.images.get(layer.tag).id
    return image_id, cached_steps >= cacheable


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or ["unknown error"])[0]
