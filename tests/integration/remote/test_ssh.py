"""SSH from a laptop that reaches only the server: `dev8 login`, `dev8 config-ssh`, then real
OpenSSH (`ssh dev8.NAME`, scp, rsync) through the ProxyCommand `dev8 ssh-proxy`, and
`dev8 port-forward` to HTTP servers started in the workspace."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time

import pytest

from tests.integration.remote.laptop import Laptop, RemoteServer, up_from_laptop

NAME = "laptop-ssh"
SIZE = 50 * 2**20


@pytest.fixture(scope="module")
def workspace(the_laptop: Laptop, server: RemoteServer) -> str:
    up_from_laptop(the_laptop, server, NAME)
    the_laptop.dev8("config-ssh")
    return NAME


def host(workspace: str) -> str:
    return f"dev8.{workspace}"


def sha256_in_workspace(laptop: Laptop, workspace: str, path: str) -> str:
    return laptop.ssh(host(workspace), f"sha256sum {path}").stdout.decode().split()[0]


def test_config_ssh_names_the_proxy_command(the_laptop: Laptop, workspace: str) -> None:
    included = (the_laptop.data / "ssh" / "config").read_text()
    assert f"Host dev8.{workspace}" in included
    assert "ssh-proxy" in included
    assert "Include" in the_laptop.ssh_config.read_text()


def test_ssh_runs_a_command(the_laptop: Laptop, workspace: str) -> None:
    result = the_laptop.ssh(host(workspace), "--", "hostname")
    assert result.stdout.decode().strip() == workspace
    assert the_laptop.ssh(host(workspace), "id -un").stdout.strip() == b"dev8"


def test_scp_copies_50_mb_both_ways(the_laptop: Laptop, workspace: str) -> None:
    config = str(the_laptop.ssh_config)
    sent = the_laptop.home / "up.bin"
    sent.write_bytes(os.urandom(SIZE))
    the_laptop.run("scp", "-q", "-F", config, str(sent), f"{host(workspace)}:/workspace/up.bin")
    got = sha256_in_workspace(the_laptop, workspace, "/workspace/up.bin")
    assert got == hashlib.sha256(sent.read_bytes()).hexdigest()

    the_laptop.ssh(host(workspace), f"head -c {SIZE} /dev/urandom > /workspace/down.bin")
    received = the_laptop.home / "down.bin"
    the_laptop.run(
        "scp", "-q", "-F", config, f"{host(workspace)}:/workspace/down.bin", str(received)
    )
    assert received.stat().st_size == SIZE
    expected = sha256_in_workspace(the_laptop, workspace, "/workspace/down.bin")
    assert hashlib.sha256(received.read_bytes()).hexdigest() == expected


@pytest.mark.skipif(shutil.which("rsync") is None, reason="rsync is not installed on this host")
def test_rsync_copies_a_tree_and_then_only_what_changed(the_laptop: Laptop, workspace: str) -> None:
    tree = the_laptop.home / "project"
    (tree / "src").mkdir(parents=True)
    for index in range(20):
        (tree / "src" / f"file{index}.txt").write_text(f"line {index}\n" * 100)
    (tree / "data.bin").write_bytes(os.urandom(2 * 2**20))
    rsh = f"ssh -F {the_laptop.ssh_config} -o BatchMode=yes"
    target = f"{host(workspace)}:/workspace/project/"

    the_laptop.run("rsync", "-a", "-e", rsh, f"{tree}/", target)
    listing = the_laptop.ssh(
        host(workspace), "cd /workspace/project && find . -type f | sort | xargs sha256sum"
    ).stdout.decode()
    local = {
        f"./{path.relative_to(tree)}": hashlib.sha256(path.read_bytes()).hexdigest()
        for path in tree.rglob("*")
        if path.is_file()
    }
    remote = {line.split()[1]: line.split()[0] for line in listing.splitlines()}
    assert remote == local

    (tree / "src" / "file3.txt").write_text("changed\n")
    second = the_laptop.run("rsync", "-a", "--stats", "-e", rsh, f"{tree}/", target)
    assert b"Number of regular files transferred: 1" in second.stdout
    changed = the_laptop.ssh(host(workspace), "cat /workspace/project/src/file3.txt").stdout
    assert changed == b"changed\n"


def test_port_forward_reaches_http_servers_in_the_workspace(
    the_laptop: Laptop, workspace: str
) -> None:
    # Two HTTP servers on the workspace's loopback, each serving a folder with a marker file.
    for port in (8000, 8001):
        the_laptop.ssh(
            host(workspace),
            f"mkdir -p /tmp/served-{port} && echo {port} > /tmp/served-{port}/marker-{port}.txt"
            f" && (setsid nohup python3 -m http.server {port} --bind 127.0.0.1"
            f" --directory /tmp/served-{port} >/tmp/http-{port}.log 2>&1 &)",
        )
    with (the_laptop.home / "port-forward.err").open("wb") as errors:
        forward = the_laptop.popen(
            "dev8",
            "port-forward",
            workspace,
            "18080:8000",
            "18081:8001",
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
    try:
        for local, remote in ((18080, 8000), (18081, 8001)):
            listing = fetch_on_laptop(the_laptop, f"http://127.0.0.1:{local}/", forward)
            assert f"marker-{remote}.txt" in listing
            body = fetch_on_laptop(
                the_laptop, f"http://127.0.0.1:{local}/marker-{remote}.txt", forward
            )
            assert body.strip() == str(remote)
    finally:
        forward.terminate()
        forward.wait(30)


def fetch_on_laptop(
    the_laptop: Laptop, url: str, forward: subprocess.Popen[bytes], timeout: float = 30.0
) -> str:
    """The body at ``url`` fetched with curl on the laptop, polled until the forward
    listens (it has just been started)."""
    deadline = time.monotonic() + timeout
    while True:
        result = the_laptop.run("curl", "-sf", "--max-time", "10", url, check=False)
        if result.returncode == 0:
            return result.stdout.decode()
        if forward.poll() is not None:
            errors = (the_laptop.home / "port-forward.err").read_text(errors="replace")
            raise AssertionError(f"dev8 port-forward exited {forward.returncode}: {errors}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} did not answer on the laptop: curl {result.returncode}")
        time.sleep(0.2)
