from pathlib import Path

from dev8.agent.__main__ import code_server_config, sshd_argv
from dev8.agent.config import AgentConfig, from_environment, parse_public_keys

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ9 me@laptop"


def test_keys_are_validated_and_split():
    text = f'{KEY}\n\n  ssh-rsa AAAAB3Nza==  \nrm -rf /\ncommand="x" ssh-rsa AAAA\n'
    assert parse_public_keys(text) == (KEY, "ssh-rsa AAAAB3Nza==")
    assert parse_public_keys(KEY + "\\n" + KEY) == (KEY, KEY)  # literal \n from env files


def test_secrets_never_reach_the_child_environment():
    config = from_environment(
        {
            "GITHUB_TOKEN": "ghp",
            "CODE_SERVER_PASSWORD": "pw",
            "DEV8_AGENT_TOKEN": "tok",
            "SSH_PUBLIC_KEY": KEY,
            "ENVIRONMENT_ID": "e1",
            "LANG": "C.UTF-8",
        }
    )
    assert config.github_token == "ghp" and config.agent_token == "tok"
    assert config.ssh_public_keys == (KEY,)
    assert set(config.child_env) == {"ENVIRONMENT_ID", "LANG"}


def test_loopback_only_is_read_from_the_environment():
    assert from_environment({}).loopback_only is False
    assert from_environment({"DEV8_LOOPBACK_ONLY": "1"}).loopback_only is True
    assert from_environment({"DEV8_LOOPBACK_ONLY": "true"}).loopback_only is True
    for off in ("", "0", "no", "false"):
        assert from_environment({"DEV8_LOOPBACK_ONLY": off}).loopback_only is False


def test_local_mode_keeps_the_ide_on_every_interface_with_its_password_and_sshd_on_all():
    config = AgentConfig()
    assert code_server_config(config) == "bind-addr: 0.0.0.0:8080\nauth: password\ncert: false\n"
    keys = [Path("/var/lib/dev8/ssh/ssh_host_ed25519_key")]
    assert sshd_argv(config, keys) == [
        "/usr/sbin/sshd",
        "-D",
        "-e",
        "-h",
        "/var/lib/dev8/ssh/ssh_host_ed25519_key",
    ]


def test_loopback_only_mode_binds_the_ide_and_sshd_to_the_loopback():
    config = AgentConfig(loopback_only=True)
    assert code_server_config(config) == "bind-addr: 127.0.0.1:8080\nauth: none\ncert: false\n"
    argv = sshd_argv(config, [Path("/k")])
    assert argv[:5] == ["/usr/sbin/sshd", "-D", "-e", "-h", "/k"]
    assert argv[5:] == ["-o", "ListenAddress=127.0.0.1:2222"]
