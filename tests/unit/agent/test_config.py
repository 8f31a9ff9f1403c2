from dev8.agent.config import from_environment, parse_public_keys

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
