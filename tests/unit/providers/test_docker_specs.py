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
    assert spec["restart_policy"] == {"Name": "no"}  # until started (provider.start)
    assert spec["nano_cpus"] == 1_500_000_000 and spec["mem_limit"] == "3072m"
    assert spec["environment"]["ENVIRONMENT_ID"] == "abc123def456"
    assert spec["environment"]["GITHUB_TOKEN"] == "t"
    assert spec["volumes"]["dev8-abc123def456-home"]["bind"] == "/home/dev8"
    assert spec["volumes"]["dev8-abc123def456-workspace"]["bind"] == "/workspace"
    assert spec["volumes"]["dev8-abc123def456-system"]["bind"] == "/var/lib/dev8"
    assert "/run" in spec["tmpfs"]
    assert spec["labels"]["dev.dev8.role"] == "container"


def test_the_container_is_confined():
    spec = container_spec(SPEC)
    assert spec["cap_drop"] == ["ALL"]
    assert "NET_RAW" not in spec["cap_add"] and "MKNOD" not in spec["cap_add"]
    # sshd's privilege separation, sudo and apt need these.
    assert {"SETUID", "SETGID", "CHOWN", "SYS_CHROOT", "AUDIT_WRITE"} <= set(spec["cap_add"])
    assert "security_opt" not in spec, "no-new-privileges would break sudo"
    assert spec["pids_limit"] == 4096
    assert spec["memswap_limit"] == spec["mem_limit"], "no swap beyond the preset's memory"
    assert spec["log_config"] == {
        "type": "json-file",
        "config": {"max-size": "10m", "max-file": "3"},
    }


def test_the_container_is_on_its_own_network():
    assert container_spec(SPEC)["network_mode"] == "dev8-abc123def456"


def test_the_network_is_a_labelled_bridge_with_a_short_interface_name():
    from ipaddress import IPv4Network

    from dev8.providers.docker.specs import network_spec

    network = network_spec(SPEC, IPv4Network("172.30.0.16/28"))
    assert network["name"] == "dev8-abc123def456"
    assert network["driver"] == "bridge"
    bridge = network["options"]["com.docker.network.bridge.name"]
    assert bridge == "dev8-abc123def4" and len(bridge) <= 15
    assert network["labels"]["dev.dev8.workspace-id"] == "abc123def456"
    assert network["labels"]["dev.dev8.owner"] == "alice"
    assert network["labels"]["dev.dev8.role"] == "network"
    assert network["ipam"]["Config"] == [{"Subnet": "172.30.0.16/28"}]
    assert "ipam" not in network_spec(SPEC, None)


def test_only_the_published_roles_are_bound():
    from dataclasses import replace

    relayed = container_spec(replace(SPEC, published=("agent",), host_ports={"agent": 4100}))
    assert relayed["ports"] == {"9000/tcp": ("127.0.0.1", 4100)}
    assert port_bindings({"ide": 1, "ssh": 2}, ("agent",)) == {"9000/tcp": ("127.0.0.1", None)}


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


def test_helper_container_spec_is_isolated_and_labelled():
    from dev8.providers.base import HelperJob, HelperMount
    from dev8.providers.docker.specs import LABEL_CLIENT, helper_container_spec

    job = HelperJob(
        workspace_id="abc123def456",
        owner="alice",
        purpose="backup",
        image="sha256:base",
        argv=["bash", "-c", "true"],
        mounts=(
            HelperMount("/source", volume="dev8-abc123def456-home"),
            HelperMount("/archive", host_path="/tmp/a b:c.tar.zst", read_only=False),
        ),
    )
    spec = helper_container_spec(job, "host:42")
    assert spec["name"].startswith("dev8-abc123def456-backup-")
    assert spec["labels"]["dev.dev8.owner"] == "alice"
    assert spec["labels"]["dev.dev8.role"] == "helper"
    assert spec["labels"][LABEL_CLIENT] == "host:42"
    assert spec["network_mode"] == "none" and spec["user"] == "root"
    assert spec["pids_limit"] == 1024 and spec["mem_limit"] == spec["memswap_limit"] == "4g"
    assert spec["cpu_shares"] == 512  # below a workspace's default 1024 under contention
    source, archive = spec["mounts"]
    assert source == {
        "Target": "/source",
        "Source": "dev8-abc123def456-home",
        "Type": "volume",
        "ReadOnly": True,
        "VolumeOptions": {"NoCopy": True},
    }
    assert archive["Type"] == "bind" and archive["Source"] == "/tmp/a b:c.tar.zst"
    assert not archive["ReadOnly"]
    assert "stdin_open" not in spec and spec["detach"] is True


def test_helper_with_secrets_on_stdin_and_network():
    from dev8.providers.base import HelperJob
    from dev8.providers.docker.specs import helper_container_spec

    job = HelperJob("id", "o", "snapshot", "img", ["restic"], network=True, stdin=b"pw\n")
    spec = helper_container_spec(job, "h:1")
    assert spec["network_mode"] == "host"
    assert spec["stdin_open"] is True and spec["detach"] is False  # docker-py: StdinOnce
    assert "pw" not in str(spec)


def test_a_mount_needs_exactly_one_source():
    import pytest

    from dev8.providers.base import HelperJob, HelperMount
    from dev8.providers.docker.specs import helper_container_spec

    for mount in (HelperMount("/x"), HelperMount("/x", volume="v", host_path="/p")):
        with pytest.raises(ValueError, match="exactly one"):
            helper_container_spec(HelperJob("i", "o", "p", "img", ["true"], mounts=(mount,)), "")


def test_quota_limits_reach_the_container_environment():
    from dataclasses import replace

    from dev8.core.quotas import quota_environment

    env = {**SPEC.env, **quota_environment({"home": 5 * 1024**3})}
    spec = container_spec(replace(SPEC, env=env))
    assert spec["environment"]["DEV8_QUOTA_HOME_BYTES"] == str(5 * 1024**3)
    assert spec["environment"]["DEV8_QUOTA_WORKSPACE_BYTES"] == str(100 * 1024**3)
