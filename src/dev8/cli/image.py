"""`dev8 image`: build and inspect the workspace image."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.live import Live
from rich.spinner import Spinner
from rich.text import Text

from dev8 import __version__
from dev8.cli.output import console, step
from dev8.core.images import image_tag, short_image_id
from dev8.imagebuild.ca import default_ca_bundle
from dev8.imagebuild.layers import LAYERS, Layer
from dev8.imagebuild.options import AUTO_BASE, BuildOptions, BuildProgress, LayerResult
from dev8.imagebuild.push import PushedTag, PushProgress, PushTally, push_image
from dev8.imagebuild.reference import Registry, parse_registry

app = typer.Typer(help="Build and inspect the workspace image.", no_args_is_help=True)


class _LiveProgress(BuildProgress):
    """One spinner line per running layer, a check mark line per finished one."""

    def __init__(self, live: Live) -> None:
        self.live = live
        self.header = ""

    def message(self, text: str) -> None:
        step(text)

    def layer_started(self, layer: Layer, index: int, total: int) -> None:
        self.header = f"[{index}/{total}] {layer.name}"
        self.live.update(Spinner("dots", Text(self.header)))

    def step(self, layer: Layer, text: str) -> None:
        line = Text(self.header + "  ", style="bold")
        line.append(text[:110], style="dim")
        self.live.update(Spinner("dots", line))

    def layer_finished(self, result: LayerResult) -> None:
        note = "cached" if result.cached else "built"
        self.live.console.print(
            f"[green]✓[/] {self.header:<16} {result.seconds:6.1f} s  {note:<6}  "
            f"{result.layer.tag}  [dim]{short_image_id(result.image_id)}[/]"
        )
        self.live.update(Text(""))


class _LivePush(PushProgress):
    """A spinner line while a tag is pushed (layers done, bytes sent), a check mark after."""

    def __init__(self, live: Live) -> None:
        self.live = live

    def tag_started(self, reference: str) -> None:
        self.live.update(Spinner("dots", Text(f"pushing {reference}")))

    def update(self, tally: PushTally) -> None:
        line = Text(f"pushing {tally.reference}  ", style="bold")
        line.append(
            f"{tally.done}/{len(tally.layers)} layers, {tally.bytes_sent / 1e6:,.0f} MB read",
            style="dim",
        )
        self.live.update(Spinner("dots", line))

    def tag_finished(self, pushed: PushedTag) -> None:
        there = pushed.layers - pushed.uploaded
        self.live.console.print(
            f"[green]✓[/] pushed {pushed.reference}  {pushed.seconds:6.1f} s  "
            f"{pushed.uploaded} layers sent, {there} already there  "
            f"[dim]{pushed.digest[:19]}[/]"
        )
        self.live.update(Text(""))


def _parse_build_args(values: list[str]) -> dict[str, str]:
    parsed = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{value!r} is not KEY=VALUE", param_hint="--build-arg")
        parsed[key] = val
    return parsed


PUSH_HELP = (
    "Then push the image to REGISTRY (host[:port][/path], e.g. "
    "registry.example.com:5000/team) as REGISTRY/dev8-workspace, tagged with the "
    "build's version and image id and with the channel tag (latest). Pushed by the "
    "engine, with the credentials of `docker login REGISTRY`."
)


@app.command()
def build(
    base: str = typer.Option(
        AUTO_BASE,
        help="Base image for the first layer: ubuntu:22.04, debian:bookworm-slim, "
        "'bootstrap' (Debian bookworm made with debootstrap), or 'auto' (pull "
        "debian:bookworm-slim, else bootstrap).",
    ),
    extra_ca: Path | None = typer.Option(
        None,
        "--extra-ca",
        help="PEM bundle to trust in every layer (default: the file named "
        "by SSL_CERT_FILE or REQUESTS_CA_BUNDLE, when set).",
        exists=True,
        dir_okay=False,
    ),
    no_extra_ca: bool = typer.Option(False, "--no-extra-ca", help="Add no extra CA."),
    mirror: str | None = typer.Option(
        None, help="Debian mirror for the bootstrapped base (default: the host's apt sources)."
    ),
    build_arg: list[str] = typer.Option(
        [], "--build-arg", help="KEY=VALUE passed to every layer, e.g. CODE_SERVER_VERSION=4.100.3."
    ),
    layer: list[str] = typer.Option(
        [], "--layer", help=f"Build up to this layer only ({', '.join(x.name for x in LAYERS)})."
    ),
    no_cache: bool = typer.Option(False, "--no-cache", help="Rebuild every step."),
    push: str | None = typer.Option(
        None,
        "--push",
        metavar="REGISTRY",
        help=PUSH_HELP,
    ),
) -> None:
    """Build the workspace image, layer by layer: base → languages → ide → workspace.

    Each layer is a folder under images/ with a Dockerfile and a README. Unchanged layers come
    from the engine's cache, so a rebuild with no changes takes seconds. A full build log is
    written to the dev8 data directory (logs/image-build.log).
    """
    registry = parse_registry(push) if push is not None else None
    options = BuildOptions(
        base=base,
        extra_ca=None if no_extra_ca else (extra_ca or default_ca_bundle()),
        mirror=mirror,
        build_args=_parse_build_args(build_arg),
        layers=tuple(layer),
        no_cache=no_cache,
    )
    from dev8.imagebuild.builder import build_all
    from dev8.providers.docker.client import connect

    client = connect()
    if options.extra_ca:
        step(f"trusting the certificates in {options.extra_ca}")
    with Live(console=console, transient=True, refresh_per_second=8) as live:
        results = build_all(client, options, _LiveProgress(live))
    total = sum(result.seconds for result in results)
    console.print(f"[bold green]Built[/] {results[-1].layer.tag} in {total:.1f} s")
    if registry is not None:
        _push(client, results[-1], registry)


def _push(client, built: LayerResult, registry: Registry) -> None:
    with Live(console=console, transient=True, refresh_per_second=8) as live:
        pushed = push_image(
            client,
            image_id=built.image_id,
            layer_repository=built.layer.repository,
            registry=registry,
            version=__version__,
            channel=image_tag(),
            progress=_LivePush(live),
        )
    deploy = pushed[0].reference
    name, _, tag = deploy.rpartition(":")
    console.print(f"[bold green]Pushed[/] {deploy}  [dim]({pushed[0].digest})[/]")
    console.print(
        f"Nodes pull it as {deploy}: put it in DEV8_IMAGES, or in the Kubernetes overlay's "
        f"images: (name: {built.layer.repository}, newName: {name}, newTag: {tag})",
        highlight=False,
        soft_wrap=True,
    )


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="image")
