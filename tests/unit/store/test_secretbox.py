import pytest

from dev8.core.errors import Dev8Error, InvalidInput
from dev8.store.secretbox import SecretBox, new_key, open_without_key, secret_names


def test_sealed_secrets_open_only_with_a_key_that_sealed_them():
    old, new = new_key(), new_key()
    sealed = SecretBox(old).seal({"GITHUB_TOKEN": "ghp_x"})
    assert "ghp_x" not in str(sealed) and secret_names(sealed) == ["GITHUB_TOKEN"]
    assert SecretBox(f"{new},{old}").open(sealed) == {"GITHUB_TOKEN": "ghp_x"}  # rotation
    with pytest.raises(Dev8Error, match="another key"):
        SecretBox(new).open(sealed)
    with pytest.raises(Dev8Error, match="encrypted"):
        open_without_key(sealed)


def test_plain_secrets_from_before_the_key_still_read():
    assert SecretBox(new_key()).open({"A": "1"}) == {"A": "1"}
    assert open_without_key(None) == {}


@pytest.mark.parametrize("key", ["", "changeme", "x" * 44])
def test_a_key_that_is_not_a_key_is_refused(key):
    with pytest.raises(InvalidInput, match="keygen"):
        SecretBox(key)
