"""The `dev8` command as a user runs it: a subprocess with its own HOME and data directory."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.integration.conftest import OWNER


def one_line_error(result) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    "args,expected",
    [
        (("up", "Bad_Name"), "invalid workspace name"),
        (("up", "x" * 64), "the limit is 63"),
        (("status", "nosuch"), "no workspace named 'nosuch'"),
        (("start", "nosuch"), "no workspace named 'nosuch'"),
        (("up", "noimg", "--image", "dev8-test/missing:1"), "is not on this engine"),
        (("up", "badsize", "--size", "huge"), "unknown size 'huge'"),
        (("up", "badmem", "--memory", "12x"), "invalid memory size"),
        (("up", "badenv", "--env", "NOEQUALS"), "is not KEY=VALUE"),
        (("up", "reserved", "--env", "DEV8_AGENT_TOKEN=x"), "set by dev8"),
    ],
)
def test_bad_input_gets_one_line_and_nothing_is_created(dev8, args, expected):
    assert expected in one_line_error(dev8(*args, check=False))
    assert json.loads(dev8("ls", "--json").stdout) == []


def test_engine_down_is_one_line(dev8):
    result = dev8("ls", check=False, DOCKER_HOST="unix:///nonexistent/docker.sock")
    assert "Docker engine is not reachable" in one_line_error(result)


def test_duplicate_and_port_conflict(dev8):
    dev8("create", "dup")
    assert "already exists" in one_line_error(dev8("create", "dup", check=False))
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = dev8("up", "clash", "--ssh-port", str(port), check=False)
        assert f"host port {port} on 127.0.0.1 is already in use" in one_line_error(result)
    assert [w["name"] for w in json.loads(dev8("ls", "--json").stdout)] == ["dup"]


def test_up_prints_how_to_reach_it_and_json_status(dev8):
    out = dev8("up", "cli-demo").stdout
    assert "is running" in out and "http://127.0.0.1:" in out and "dev8 ssh cli-demo" in out
    status = json.loads(dev8("status", "cli-demo", "--json").stdout)
    assert (
        status["state"] == "running" and status["agent"]["services"]["sshd"]["state"] == "running"
    )
    assert "DEV8_AGENT_TOKEN" not in json.dumps(
        status
    ) and "CODE_SERVER_PASSWORD" not in json.dumps(status)
    assert dev8("url", "cli-demo").stdout.strip() == status["ide_url"]
    assert len(dev8("password", "cli-demo").stdout.strip()) >= 20
    listed = json.loads(dev8("ls", "--json").stdout)
    assert [(w["name"], w["state"]) for w in listed] == [("cli-demo", "running")]
    history = json.loads(dev8("history", "cli-demo", "--json").stdout)
    assert [(h["action"], h["result"]) for h in history] == [
        ("start", "succeeded"),
        ("create", "succeeded"),
    ]
    assert all(h["actor"] == OWNER and h["duration_s"] is not None for h in history)


def test_exec_and_ssh_and_config_ssh(dev8):
    dev8("up", "sshy")
    assert dev8("exec", "sshy", "--", "sh", "-c", "id -un; pwd").stdout.split() == [
        "dev8",
        "/workspace",
    ]
    assert dev8("exec", "sshy", "--", "sh", "-c", "exit 7", check=False).returncode == 7
    assert dev8("ssh", "sshy", "--", "hostname").stdout.strip() == "sshy"

    ssh_dir = dev8.home / ".ssh"
    ssh_dir.mkdir(mode=0o700)
    mine = "Host mine\n  HostName example.invalid\n"
    (ssh_dir / "config").write_text(mine)
    dev8("config-ssh")
    dev8("config-ssh")  # idempotent
    config = (ssh_dir / "config").read_text()
    assert config.endswith(mine) and config.count("Include ") == 1
    # Plain OpenSSH, with only the config dev8 wrote: ProxyCommand + pinned host key.
    result = subprocess.run(
        [
            "ssh",
            "-F",
            str(ssh_dir / "config"),
            "-o",
            "BatchMode=yes",
            "dev8.sshy",
            "echo",
            "via-config",
        ],
        capture_output=True,
        text=True,
        env=dev8.env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "via-config"


def test_ssh_via_config_starts_a_stopped_workspace(dev8):
    dev8("up", "lazy")
    dev8("stop", "lazy")
    dev8("config-ssh")
    config = dev8.home / ".ssh" / "config"
    result = subprocess.run(
        ["ssh", "-F", str(config), "-o", "BatchMode=yes", "dev8.lazy", "true"],
        capture_output=True,
        text=True,
        env=dev8.env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(dev8("status", "lazy", "--json").stdout)["state"] == "running"


def test_rm_purge_asks_and_names_what_it_destroys(dev8):
    dev8("create", "doomed")
    refused = dev8("rm", "--purge", "doomed", check=False)
    assert "confirm with --yes" in one_line_error(refused)
    kept = dev8("rm", "doomed").stdout
    assert "volumes are kept" in kept
    assert json.loads(dev8("ls", "--json").stdout) == []
    dev8("up", "doomed")  # back on its volumes
    gone = dev8("rm", "--purge", "--yes", "doomed").stdout
    assert "destroyed 3 volume(s)" in gone and "-home" in gone
