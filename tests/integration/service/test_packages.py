"""System packages survive `dev8 rebuild`: the seed's JDK + Maven example and the rest of the
packages contract, against the real engine, image, apt and Debian mirror."""

from __future__ import annotations

import json
import time

import pytest

from dev8.core.naming import LABEL_OWNER
from dev8.providers.docker import provider as docker_provider
from dev8.service.workspaces import PACKAGES_TOOL, CreateRequest, WorkspaceService
from tests.integration.owned import OWNER


def sh(
    service: WorkspaceService, name: str, script: str, user: str = "dev8", check: bool = True
) -> str:
    workspace = service.find(name)
    result = service.provider.exec(workspace.id, ["bash", "-lc", script], user=user)
    output = result.output.decode(errors="replace")
    if check and result.exit_code != 0:
        raise AssertionError(f"{script!r} exited {result.exit_code}:\n{output[-2000:]}")
    return output


def report(service: WorkspaceService, name: str) -> dict:
    out = sh(
        service, name, "cat /var/lib/dev8/packages/restore-report.json", user="root", check=False
    )
    return json.loads(out) if out.startswith("{") else {}


def recorded(service: WorkspaceService, name: str) -> dict:
    workspace = service.find(name)
    result = service.provider.exec(workspace.id, [*PACKAGES_TOOL, "show"], user="root")
    return json.loads(result.output)["recorded"]


def wait_for_restore(
    service: WorkspaceService, name: str, since: float, timeout: float = 300
) -> dict:
    """The report of a restore that started after ``since`` (epoch s), once it finished."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            current = report(service, name)
        except Exception:  # the container may still be starting
            current = {}
        if current.get("started_at", 0) > since and current.get("status") != "running":
            return current
        time.sleep(1)
    raise AssertionError(f"restore in {name} did not finish: {report(service, name)}")


@pytest.fixture
def offline(monkeypatch):
    """New containers get no network at all (``network_mode=none``): real isolation, so a
    restore can only use what is on the volumes. Health is then checked through exec."""
    original = docker_provider.container_spec

    def isolated(spec):
        built = original(spec)
        built.pop("ports")
        built["network_mode"] = "none"
        return built

    monkeypatch.setattr(docker_provider, "container_spec", isolated)
    return monkeypatch


def changed_image(client, base_image: str, marker: str) -> str:
    tag = f"dev8-test/changed:{marker}-{OWNER}"
    container = client.containers.create(
        base_image, entrypoint=["sh", "-c", f"echo {marker} > /etc/dev8-image-marker"]
    )
    container.start()
    container.wait()
    container.commit(
        repository=tag.split(":")[0],
        tag=tag.split(":")[1],
        changes=[
            f"LABEL {LABEL_OWNER}={OWNER}",
            'ENTRYPOINT ["/usr/bin/tini", "--", "/opt/dev8/venv/bin/python", "-m", "dev8.agent"]',
        ],
    )
    container.remove(force=True)
    return tag


@pytest.fixture(scope="module")
def jdk(tmp_path_factory, client, workspace_image):
    """One workspace where dev8 ran the seed's `sudo apt install -y openjdk-17-jdk maven`."""
    from dev8.providers.docker.provider import DockerProvider
    from dev8.store.store import Store

    service = WorkspaceService(
        store=Store.open_sqlite(tmp_path_factory.mktemp("jdk") / "db"),
        provider=DockerProvider(client),
        owner=OWNER,
    )
    service.up(CreateRequest(name="jdk"))
    sh(service, "jdk", "sudo apt-get update -q && sudo apt install -y -q openjdk-17-jdk maven")
    yield service
    workspace = service.find("jdk")
    service.provider.remove(workspace.id)
    service.provider.remove_volumes(workspace.id)


def shipped_versions(service: WorkspaceService, name: str) -> dict[str, str]:
    baseline = json.loads(sh(service, name, "cat /etc/dev8/packages/baseline.json"))
    return baseline["installed"]


def assert_java_works_and_nothing_downgraded(service: WorkspaceService, name: str) -> None:
    out = sh(service, name, "java -version 2>&1; javac -version; mvn -v")
    assert 'openjdk version "17' in out and "javac 17" in out and "Apache Maven" in out
    assert sh(service, name, "dpkg --audit") == ""
    sh(service, name, "sudo apt-get check -q")
    shipped = shipped_versions(service, name)
    installed = dict(
        line.split("\t")
        for line in sh(service, name, "dpkg-query -W -f '${Package}\\t${Version}\\n'").splitlines()
    )
    for package, version in shipped.items():
        if installed.get(package, version) != version:
            sh(service, name, f"dpkg --compare-versions '{installed[package]}' ge '{version}'")


def test_jdk_and_maven_survive_a_rebuild_onto_a_changed_image(jdk, client, workspace_image):
    assert {"openjdk-17-jdk", "maven"} <= set(recorded(jdk, "jdk")["packages"])
    new_image = changed_image(client, workspace_image, "v2")

    jdk.rebuild("jdk", image=new_image)

    assert sh(jdk, "jdk", "cat /etc/dev8-image-marker").strip() == "v2"
    result = report(jdk, "jdk")
    assert result["status"] == "complete" and result["downgraded"] == []
    assert {"openjdk-17-jdk", "maven"} <= set(result["offline"]) and result["network"] == []
    assert_java_works_and_nothing_downgraded(jdk, "jdk")
    manual = set(sh(jdk, "jdk", "apt-mark showmanual").split())
    assert {"openjdk-17-jdk", "maven"} <= manual
    assert "openjdk-17-jre-headless" not in manual  # dependencies stay automatic


def test_restore_works_from_the_cache_alone(jdk, client, workspace_image, offline):
    new_image = changed_image(client, workspace_image, "v3")
    since = time.time()
    jdk.rebuild("jdk", image=new_image, wait=False)
    assert sh(jdk, "jdk", "ls /sys/class/net").split() == ["lo"]  # loopback only
    result = wait_for_restore(jdk, "jdk", since)
    assert result["status"] == "complete", result
    assert result["network"] == [] and "maven" in result["offline"]
    assert_java_works_and_nothing_downgraded(jdk, "jdk")
    offline.undo()
    jdk.rebuild("jdk")  # back on the network for the next tests


# dpkg's states between "not there" and "installed": a package in one of them is unpacked
# but not yet configured, so a kill now leaves work that only `dpkg --configure -a` finishes.
DPKG_MIDWAY = {"half-installed", "unpacked", "half-configured", "triggers-awaited"}


def dpkg_midway(service: WorkspaceService, name: str) -> bool:
    """Whether dpkg is in the middle of its work: some package is half done."""
    states = sh(service, name, "dpkg-query -W -f='${db:Status-Status}\\n'", "root", check=False)
    return bool(DPKG_MIDWAY & set(states.split()))


def test_an_interrupted_restore_recovers_on_the_next_start(jdk, client, workspace_image):
    workspace = jdk.find("jdk")
    since = time.time()
    jdk.rebuild("jdk", wait=False)
    deadline = time.monotonic() + 120
    while not dpkg_midway(jdk, "jdk"):
        current = report(jdk, "jdk")
        finished = current.get("started_at", 0) > since and current.get("status") != "running"
        assert not finished, f"the restore finished before dpkg was caught half way: {current}"
        assert time.monotonic() < deadline, "dpkg never got half way"
        time.sleep(0.2)
    client.containers.get(f"dev8-{workspace.id}").kill()
    jdk.start("jdk")
    result = report(jdk, "jdk")
    assert result["status"] == "complete" and result["attempt"] >= 2, result
    assert_java_works_and_nothing_downgraded(jdk, "jdk")


@pytest.fixture
def workspace(service):
    service.up(CreateRequest(name="pkgs"))
    sh(service, "pkgs", "sudo apt-get update -q")
    return service


def test_sources_keys_holds_and_edited_config_come_back_and_removed_do_not(workspace):
    s = workspace
    # A source of the user's own, signed by a keyring the user added: the same mirror as the
    # image's, through a copy of its keyring (so the test needs no other host).
    sh(
        s,
        "pkgs",
        """
        uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
        sudo install -d /etc/apt/keyrings
        sudo cp /usr/share/keyrings/debian-archive-keyring.gpg /etc/apt/keyrings/mine.gpg
        echo "deb [signed-by=/etc/apt/keyrings/mine.gpg] $uri bookworm-proposed-updates main" |
            sudo tee /etc/apt/sources.list.d/mine.list
        sudo apt-get update -q
        sudo apt install -y -q sl screen cowsay
        sudo apt-mark hold sl
        echo '# edited by the user' | sudo tee -a /etc/screenrc
        sudo apt remove -y -q cowsay
    """,
    )
    before = sh(
        s,
        "pkgs",
        "sha256sum /etc/apt/sources.list.d/mine.list /etc/apt/keyrings/mine.gpg /etc/screenrc",
    )
    s.rebuild("pkgs")
    assert (
        sh(
            s,
            "pkgs",
            "sha256sum /etc/apt/sources.list.d/mine.list /etc/apt/keyrings/mine.gpg /etc/screenrc",
        )
        == before
    )
    assert sh(s, "pkgs", "apt-mark showhold").split() == ["sl"]
    assert sh(s, "pkgs", "tail -1 /etc/screenrc").strip() == "# edited by the user"
    installed = sh(
        s, "pkgs", "dpkg-query -W -f '${Package} ${Status}\\n' sl screen cowsay", check=False
    )
    assert "sl install ok installed" in installed.replace("hold ok", "install ok")
    assert "screen install ok installed" in installed
    assert "cowsay install ok installed" not in installed
    sh(s, "pkgs", "sudo apt-get update -q")  # the restored source and key still verify


def test_missing_from_cache_without_network_starts_reports_and_retries(workspace, offline):
    s = workspace
    sh(
        s,
        "pkgs",
        "sudo apt install -y -q sl && sudo rm /var/lib/dev8/packages/pool/sl_*.deb "
        "/var/lib/dev8/packages/archives/sl_*.deb",
    )
    since = time.time()
    s.rebuild("pkgs", wait=False)
    result = wait_for_restore(s, "pkgs", since)
    assert result["status"] == "failed" and result["missing"] == ["sl"]
    # The workspace started anyway: both services run.
    health = sh(s, "pkgs", "curl -s -o /dev/null -w '%{http_code}' localhost:9000/health")
    deadline = time.monotonic() + 30
    while health != "200" and time.monotonic() < deadline:
        time.sleep(0.5)
        health = sh(s, "pkgs", "curl -s -o /dev/null -w '%{http_code}' localhost:9000/health")
    assert health == "200"
    assert "sl" in recorded(s, "pkgs")["packages"]  # a failed restore never shrinks the record
    login = sh(s, "pkgs", "bash -lic true 2>/dev/null")
    assert "could not be restored (sl)" in login
    offline.undo()
    s.rebuild("pkgs")  # the next start, with network
    result = report(s, "pkgs")
    assert result["status"] == "complete" and result["network"] == ["sl"], result
    assert sh(s, "pkgs", "test -x /usr/games/sl && echo ok").strip() == "ok"
    assert sh(s, "pkgs", "bash -lic true 2>/dev/null") == ""


def test_user_level_tools_survive_a_rebuild(workspace):
    s = workspace
    sh(
        s,
        "pkgs",
        """
        npm install -g --silent semver@7.6.3
        pip install --user -q cowsay==6.1
        mkdir -p /workspace/hello && cd /workspace/hello
        cat > Cargo.toml <<'TOML'
[package]
name = "dev8-hello"
version = "0.1.0"
edition = "2021"
TOML
        mkdir -p src && echo 'fn main() { println!("hello from cargo"); }' > src/main.rs
        cargo install --quiet --offline --path .
        mkdir -p /workspace/gohello && cd /workspace/gohello
        printf 'module example.com/gohello\\ngo 1.19\\n' > go.mod
        printf 'package main\\nimport "fmt"\\n' > main.go
        printf 'func main() { fmt.Println("hello from go") }\\n' >> main.go
        GOFLAGS=-mod=mod GOPROXY=off go install .
    """,
    )
    s.rebuild("pkgs")
    out = sh(
        s,
        "pkgs",
        "semver 1.2.3; cowsay -t moo; dev8-hello; gohello; "
        "command -v semver cowsay dev8-hello gohello",
    )
    assert "1.2.3" in out and "moo" in out and "hello from cargo" in out and "hello from go" in out
    assert "/home/dev8/.local/bin/semver" in out and "/home/dev8/.cargo/bin/dev8-hello" in out
    assert "/home/dev8/go/bin/gohello" in out and "/home/dev8/.local/bin/cowsay" in out
