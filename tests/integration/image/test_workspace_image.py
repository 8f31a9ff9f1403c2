"""The workspace image and its agent, run as a real container on the real engine."""

from __future__ import annotations

import re
import subprocess
import time

import httpx
import pytest

from dev8.core.naming import new_workspace_id, volume_name
from dev8.core.resources import Resources
from dev8.providers.base import WorkspaceSpec
from dev8.providers.docker.provider import DockerProvider
from tests.integration.helpers import SSH_OPTIONS, host_key_fingerprints, ssh, wait_healthy
from tests.integration.owned import OWNER

TOKEN = "agent-token-for-tests"
PASSWORD = "correct horse battery staple"
GITHUB_TOKEN = "ghp_dev8TestTokenNeverOnDisk0123456789"


def make_spec(
    image: str, key_pub: str, workspace_id: str | None = None, **env: str
) -> WorkspaceSpec:
    return WorkspaceSpec(
        workspace_id=workspace_id or new_workspace_id(),
        name="imagetest",
        owner=OWNER,
        image=image,
        resources=Resources(2, 4096),
        env={
            "DEV8_AGENT_TOKEN": TOKEN,
            "CODE_SERVER_PASSWORD": PASSWORD,
            "SSH_PUBLIC_KEY": key_pub,
            **env,
        },
    )


@pytest.fixture
def running(provider: DockerProvider, workspace_image: str, ssh_key):
    """Start a workspace container; yields (spec, runtime status). Removes it all after."""
    specs = []

    def start(**env: str):
        spec = make_spec(workspace_image, ssh_key.with_suffix(".pub").read_text(), **env)
        specs.append(spec)
        provider.create(spec)
        runtime = provider.start(spec.workspace_id)
        wait_healthy(runtime.ports["agent"])
        return spec, provider.status(spec.workspace_id)

    yield start
    for spec in specs:
        provider.remove(spec.workspace_id)
        provider.remove_volumes(spec.workspace_id)


def agent_status(runtime) -> dict:
    return httpx.get(
        f"http://127.0.0.1:{runtime.ports['agent']}/status",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5,
    ).json()


def test_ssh_key_login_works_and_password_and_root_are_refused(running, ssh_key):
    _, runtime = running()
    port = runtime.ports["ssh"]
    result = ssh(port, ssh_key, "id -u; id -un; sudo -n id -u")
    assert result.stdout.split() == [b"1000", b"dev8", b"0"]

    password_try = subprocess.run(
        [
            "ssh",
            *SSH_OPTIONS,
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "PreferredAuthentications=password,keyboard-interactive",
            "-p",
            str(port),
            "dev8@127.0.0.1",
            "true",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert password_try.returncode == 255
    assert "Permission denied (publickey)" in password_try.stderr  # the only method offered

    root_try = ssh(port, ssh_key, "true", user="root", check=False)
    assert root_try.returncode == 255 and b"Permission denied" in root_try.stderr


def test_code_server_health_and_password_login(running):
    _, runtime = running()
    ide = f"http://127.0.0.1:{runtime.ports['ide']}"
    assert httpx.get(f"{ide}/healthz", timeout=5).status_code == 200

    wrong = httpx.post(f"{ide}/login", data={"password": "wrong"}, timeout=10)
    assert "code-server-session" not in wrong.cookies
    refused = httpx.get(f"{ide}/?folder=/workspace", cookies=wrong.cookies, timeout=10)
    assert refused.status_code == 302 and "login" in refused.headers["location"]

    right = httpx.post(f"{ide}/login", data={"password": PASSWORD}, timeout=10)
    assert right.status_code == 302 and "code-server-session" in right.cookies
    workbench = httpx.get(f"{ide}/?folder=/workspace", cookies=right.cookies, timeout=10)
    assert workbench.status_code == 200 and "workbench" in workbench.text


def test_no_fixed_default_password(provider, workspace_image, ssh_key, running):
    """Without a password the agent makes one up that nobody is told (the agent no longer
    serves it): no empty or well-known password opens the IDE."""
    _spec, runtime = running(CODE_SERVER_PASSWORD="")
    assert agent_status(runtime)["password_generated"] is True
    ide = f"http://127.0.0.1:{runtime.ports['ide']}"
    for guess in ("", "dev8", "password", PASSWORD):
        login = httpx.post(f"{ide}/login", data={"password": guess}, timeout=10)
        assert "code-server-session" not in login.cookies


def test_killed_code_server_is_restarted_within_10_s(running):
    spec, runtime = running()
    before = agent_status(runtime)["services"]["code-server"]
    subprocess.run(
        ["docker", "exec", f"dev8-{spec.workspace_id}", "kill", "-9", str(before["pid"])],
        check=True,
    )
    health = f"http://127.0.0.1:{runtime.ports['agent']}/health"
    deadline = time.monotonic() + 5
    while httpx.get(health).status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.05)  # until the agent notices
    assert wait_healthy(runtime.ports["agent"], timeout=10) < 10
    after = agent_status(runtime)["services"]["code-server"]
    assert after["restarts"] == before["restarts"] + 1 and after["pid"] != before["pid"]


def test_status_needs_the_token_and_reports_services_activity_disk(running, ssh_key):
    _, runtime = running()
    url = f"http://127.0.0.1:{runtime.ports['agent']}/status"
    assert httpx.get(url).status_code == 401
    status = agent_status(runtime)
    assert set(status["services"]) == {"sshd", "code-server"}
    assert all(s["state"] == "running" for s in status["services"].values())
    assert status["disk"]["home"]["path"] == "/home/dev8"
    assert status["warnings"] == []  # the system volume is mounted
    assert status["activity"]["ssh_sessions"] == 0
    with subprocess.Popen(
        [
            "ssh",
            *SSH_OPTIONS,
            "-i",
            str(ssh_key),
            "-p",
            str(runtime.ports["ssh"]),
            "dev8@127.0.0.1",
            "sleep 5",
        ]
    ) as session:
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline and not agent_status(runtime)["activity"]["ssh_sessions"]:
            time.sleep(0.2)
        activity = agent_status(runtime)["activity"]
        session.wait()
    assert activity["ssh_sessions"] == 1 and activity["last_ssh_at"] is not None


def test_host_key_survives_destroying_and_recreating_the_container(
    provider, workspace_image, ssh_key
):
    spec = make_spec(workspace_image, ssh_key.with_suffix(".pub").read_text())
    try:
        provider.create(spec)
        runtime = provider.start(spec.workspace_id)
        wait_healthy(runtime.ports["agent"])
        before = host_key_fingerprints(runtime.ports["ssh"])
        provider.remove(spec.workspace_id)
        provider.create(spec)
        runtime = provider.start(spec.workspace_id)
        wait_healthy(runtime.ports["agent"])
        assert host_key_fingerprints(runtime.ports["ssh"]) == before and len(before) == 3
    finally:
        provider.remove(spec.workspace_id)
        provider.remove_volumes(spec.workspace_id)


def test_root_owned_fresh_volume_is_given_to_uid_1000(client, provider, workspace_image, ssh_key):
    spec = make_spec(workspace_image, ssh_key.with_suffix(".pub").read_text())
    home = volume_name(spec.workspace_id, "home")
    labels = {
        "dev.dev8.workspace-id": spec.workspace_id,
        "dev.dev8.owner": OWNER,
        "dev.dev8.role": "home",
    }
    client.volumes.create(home, labels=labels)
    # A volume filled by root elsewhere (e.g. restored by hand): root-owned top and contents.
    client.containers.run(
        workspace_image,
        entrypoint=[
            "sh",
            "-c",
            "mkdir -p /v/project && echo hi > /v/project/file && chown -R 0:0 /v && chmod 755 /v",
        ],
        volumes={home: {"bind": "/v"}},
        remove=True,
        labels={"dev.dev8.owner": OWNER},
    )
    try:
        provider.create(spec)
        runtime = provider.start(spec.workspace_id)
        wait_healthy(runtime.ports["agent"])
        owners = ssh(
            runtime.ports["ssh"],
            ssh_key,
            "stat -c '%u:%g' /home/dev8 /home/dev8/project /home/dev8/project/file /workspace",
        )
        assert owners.stdout.split() == [b"1000:1000"] * 4
        assert ssh(runtime.ports["ssh"], ssh_key, "cat project/file").stdout == b"hi\n"
        assert ssh(runtime.ports["ssh"], ssh_key, "test -f .bashrc && echo yes").stdout == b"yes\n"
    finally:
        provider.remove(spec.workspace_id)
        provider.remove_volumes(spec.workspace_id)


def test_docker_stop_is_clean_and_quick(client, running):
    spec, _ = running()
    container = client.containers.get(f"dev8-{spec.workspace_id}")
    started = time.monotonic()
    container.stop(timeout=10)
    elapsed = time.monotonic() - started
    container.reload()
    assert elapsed < 10, f"docker stop took {elapsed:.1f} s"
    assert container.attrs["State"]["ExitCode"] == 0


def test_github_token_reaches_git_and_gh_but_never_the_volumes(client, running, ssh_key):
    spec, runtime = running(
        GITHUB_TOKEN=GITHUB_TOKEN,
        GIT_AUTHOR_NAME="Ada Lovelace",
        GIT_AUTHOR_EMAIL="ada@example.com",
    )
    port = runtime.ports["ssh"]
    fill = ssh(
        port, ssh_key, "printf 'protocol=https\\nhost=github.com\\n\\n' | git credential fill"
    )
    assert f"password={GITHUB_TOKEN}".encode() in fill.stdout
    other = ssh(
        port,
        ssh_key,
        "printf 'protocol=https\\nhost=gitlab.example\\n\\n' | "
        "GIT_TERMINAL_PROMPT=0 git credential fill",
        check=False,
    )
    assert GITHUB_TOKEN.encode() not in other.stdout
    assert ssh(port, ssh_key, "gh auth token").stdout.strip() == GITHUB_TOKEN.encode()
    assert ssh(port, ssh_key, "git config user.name").stdout.strip() == b"Ada Lovelace"
    # A real git operation: a commit in a fresh repository on the workspace volume.
    ssh(
        port,
        ssh_key,
        "cd /workspace && git init -q repo && cd repo && echo x > f && "
        "git add f && git commit -qm first && git log --format=%an",
    )
    # No file on any volume holds the token, and neither do the container's logs.
    for role in ("home", "workspace", "system"):
        found = _grep_volume(client, volume_name(spec.workspace_id, role), GITHUB_TOKEN)
        assert found == "", f"token found on volume {role}: {found}"
    # The check above can find what it looks for: the same search on /run finds the token.
    run_dir = subprocess.run(
        ["docker", "exec", f"dev8-{spec.workspace_id}", "grep", "-rlF", GITHUB_TOKEN, "/run/dev8"],
        capture_output=True,
        text=True,
    )
    assert run_dir.stdout.strip() == "/run/dev8/secrets/github-token"
    logs = client.containers.get(f"dev8-{spec.workspace_id}").logs().decode()
    assert GITHUB_TOKEN not in logs


def _grep_volume(client, volume: str, needle: str) -> str:
    """Files on ``volume`` containing ``needle`` (empty when none), via a helper container."""
    container = client.containers.run(
        "dev8/base:latest",
        ["grep", "-rlF", needle, "/v"],
        volumes={volume: {"bind": "/v", "mode": "ro"}},
        labels={"dev.dev8.owner": OWNER},
        detach=True,
    )
    try:
        code = container.wait()["StatusCode"]
        output = container.logs().decode()
    finally:
        container.remove(force=True)
    assert code in (0, 1), f"grep failed: {output}"
    return output.strip()


def test_toolchains_and_user_level_prefixes(running, ssh_key):
    _, runtime = running()
    port = runtime.ports["ssh"]
    versions = ssh(
        port,
        ssh_key,
        "node --version; npm --version; python3 --version; go version; "
        "rustc --version; cargo --version; code-server --version; gh --version; "
        "tini --version; git --version; jq --version; tmux -V; rsync --version",
    ).stdout.decode()
    assert re.search(r"^v20\.", versions, re.M)
    assert re.search(r"go version go1\.2\d", versions) and re.search(
        r"^rustc 1\.\d+", versions, re.M
    )
    assert re.search(r"^4\.100\.3 ", versions, re.M)  # code-server's own version line
    assert "gh version" in versions and "tini version" in versions
    prefixes = ssh(port, ssh_key, "npm config get prefix; echo $PATH").stdout.decode().split()
    assert prefixes[0] == "/home/dev8/.local"
    assert prefixes[1].startswith("/home/dev8/.local/bin:/home/dev8/.cargo/bin:/home/dev8/go/bin:")
