from __future__ import annotations

import pytest

from dev8.core.environment import check_env_name, user_secret_names
from dev8.core.errors import InvalidInput


@pytest.mark.parametrize("name", ["GITHUB_TOKEN", "_x", "DEV8_FOO", "a" * 128])
def test_valid_names(name):
    assert check_env_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "1X", "A-B", "A B", "X\n", "a" * 129, "DEV8_AGENT_TOKEN", "CODE_SERVER_PASSWORD"]
)
def test_invalid_or_reserved_names(name):
    with pytest.raises(InvalidInput):
        check_env_name(name)


def test_a_users_own_dev8_prefixed_secret_is_shown_and_internal_ones_are_not():
    secrets = {"DEV8_FOO": "1", "DEV8_AGENT_TOKEN": "t", "CODE_SERVER_PASSWORD": "p", "A": "2"}
    assert user_secret_names(secrets) == ["A", "DEV8_FOO"]
