from dev8.core.resources import Resources
from dev8.providers.base import WorkspaceSpec
from dev8.providers.docker.specs import container_spec, port_bindings, published_ports, volume_specs

SPEC = WorkspaceSpec(
    workspace_id="abc123def456",
    name="demo",
    owner="alice",
    image="sha256:feed",
    resources=Resources(1.5, 3072),
    env={"GITHUB_TOKEN": "t", "DEV8_AGENT_TOKEN": "a"},
)


def test_three_labelled_volumes_named_from_the_id():
    volumes = volume_specs(SPEC)
    assert [v["name"] for v in volumes] == [
        "dev8-abc123def456-home",
        "dev8-abc123def456-workspace",
        "dev8-abc123def456-system",
    ]
    assert {v["labels"]["dev.dev8.role"] for v in volumes} == {"home", "workspace", "system"}
    assert all(v["labels"]["dev.dev8.owner"] == "alice" for v in volumes)


def test_container_spec():
    spec = container_spec(SPEC)
    assert spec["image"] == "sha256:feed"
    assert spec["name"] == "dev8-abc123def456"
    assert spec["restart_policy"] == {"Name": "unless-stopped"}
    assert spec["nano_cpus"] == 1_500_000_000 and spec["mem_limit"] == "3072m"
    assert spec["environment"]["ENVIRONMENT_ID"] == "abc123def456"
    assert spec["environment"]["GITHUB_TOKEN"] == "t"
    assert spec["volumes"]["dev8-abc123def456-home"]["bind"] == "/home/dev8"
    assert spec["volumes"]["dev8-abc123def456-workspace"]["bind"] == "/workspace"
    assert spec["volumes"]["dev8-abc123def456-system"]["bind"] == "/var/lib/dev8"
    assert "/run" in spec["tmpfs"]
    assert spec["labels"]["dev.dev8.role"] == "container"


def test_ports_are_published_on_loopback_only():
    bindings = port_bindings({})
    assert bindings == {
        "8080/tcp": ("127.0.0.1", None),
        "2222/tcp": ("127.0.0.1", None),
        "9000/tcp": ("127.0.0.1", None),
    }
    assert port_bindings({"ide": 18080})["8080/tcp"] == ("127.0.0.1", 18080)


def test_published_ports_read_back_from_inspect():
    ports = {
        "8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "32771"}],
        "2222/tcp": [{"HostIp": "127.0.0.1", "HostPort": "32772"}],
        "9000/tcp": None,
    }
    assert published_ports(ports) == {"ide": 32771, "ssh": 32772}
    assert published_ports(None) == {}
