import pytest

from dev8.core.errors import InvalidInput
from dev8.core.users import validate_password, validate_ssh_keys, validate_user_name

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBiYbJ3yP1ZK2r0cHVf3tqk1vK3QJmKUCR0P3hL5M1Gx me@host"


@pytest.mark.parametrize("name", ["alice", "a", "bob.smith", "ci_bot-2"])
def test_valid_user_names(name):
    assert validate_user_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "Alice", "-x", "x-", "a b", "x" * 64, "reconciler", "alice\n", "al\x00ice"]
)
def test_invalid_or_reserved_user_names(name):
    with pytest.raises(InvalidInput):
        validate_user_name(name)


def test_passwords_need_ten_characters_and_no_nul():
    assert validate_password("ten chars!")
    for bad in ("short", "x" * 1025, "ten chars\x00!"):
        with pytest.raises(InvalidInput):
            validate_password(bad)


def test_ssh_keys_are_normalised_and_checked():
    text = f"# mine\n\n{KEY}\n{KEY}\n"
    assert validate_ssh_keys(text) == KEY + "\n"
    assert validate_ssh_keys("") == ""
    with pytest.raises(InvalidInput, match="line 2"):
        validate_ssh_keys(f"{KEY}\nssh-ed25519 not-base64!")
    with pytest.raises(InvalidInput, match="line 1"):
        validate_ssh_keys("ssh-dss AAAAB3NzaC1kc3M= old")
