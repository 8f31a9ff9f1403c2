"""`dev8 image build`'s options, without an engine: the docker SDK is not loaded to parse them,
and a bad --push registry is refused before the engine is asked anything."""

from __future__ import annotations

import subprocess
import sys

from tests.unit.cli.test_main import imports_of


def test_image_build_help_loads_no_docker_sdk():
    loaded = imports_of("image", "build", "--help")
    assert "dev8.cli.image" in loaded
    assert not {"docker", "dev8.imagebuild.builder"} & loaded


def test_a_bad_registry_is_one_line_and_exit_1_before_any_engine_work():
    result = subprocess.run(
        [sys.executable, "-m", "dev8", "image", "build", "--push", "team:v1"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"DOCKER_HOST": "tcp://127.0.0.1:1", "PATH": "/usr/bin:/bin", "COLUMNS": "200"},
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: --push: 'team:v1' is not a registry host[:port], e.g. "
        "registry.example.com:5000/team"
    ]
    assert "Traceback" not in result.stdout + result.stderr
