"""Docker's vocabulary stays below ``providers/``: the service, the server, the CLI and the
SDK never import the docker SDK or a Docker backend module, never run the ``docker``
binary, and never compare a state with a string (states are ``ContainerState`` /
``ObservedState`` members), so that another backend plugs in without imitating Docker.

The two commands that exist only for the Docker backend, `dev8 engine` (installs the
engine) and `dev8 image` (builds the images with it), are the allowed exceptions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "dev8"
ABOVE_PROVIDERS = ("service", "server", "cli", "client")
DOCKER_ONLY_COMMANDS = {"cli/engine.py", "cli/image.py"}
DOCKER_STATE_WORDS = {"running", "restarting", "paused", "created", "exited", "dead", "missing"}


def _modules() -> list[Path]:
    return sorted(
        path
        for package in ABOVE_PROVIDERS
        for path in (SRC / package).rglob("*.py")
        if str(path.relative_to(SRC)) not in DOCKER_ONLY_COMMANDS
    )


def docker_leaks(source: str) -> list[str]:
    """What in ``source`` names Docker: imports of the SDK or a Docker backend, the
    ``docker`` binary, a ``.state`` compared with a string."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            names = []
        found += [f"imports {n}" for n in names if _is_docker_module(n)]
        if isinstance(node, ast.Constant) and node.value == "docker":
            found.append(f"line {node.lineno}: the string 'docker'")
        if isinstance(node, ast.Compare) and _compares_state_with_text(node):
            found.append(f"line {node.lineno}: a state compared with a string")
    return found


def _is_docker_module(name: str) -> bool:
    return name == "docker" or name.startswith(("docker.", "dev8.providers.docker"))


def _compares_state_with_text(node: ast.Compare) -> bool:
    sides = [node.left, *node.comparators]
    names_state = any(isinstance(s, ast.Attribute) and s.attr == "state" for s in sides)
    texts = [s for s in sides if isinstance(s, ast.Constant) and isinstance(s.value, str)]
    for side in sides:
        if isinstance(side, (ast.Tuple, ast.List, ast.Set)):
            texts += [e for e in side.elts if isinstance(e, ast.Constant)]
    return names_state and any(t.value in DOCKER_STATE_WORDS for t in texts)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_no_docker_above_the_providers(path: Path):
    assert docker_leaks(path.read_text()) == []


@pytest.mark.parametrize(
    "source",
    [
        "import docker",
        "from docker.errors import NotFound",
        "from dev8.providers.docker.provider import DockerProvider",
        "shutil.which('docker')",
        "if status.state == 'exited': pass",
        "if runtime.state in ('running', 'restarting'): pass",
    ],
)
def test_the_check_catches_each_kind_of_leak(source: str):
    assert docker_leaks(source)


def test_the_check_passes_provider_neutral_code():
    assert docker_leaks("if runtime.state is ContainerState.EXITED: pass") == []
