import pytest

from dev8.core.errors import InvalidInput
from dev8.core.naming import container_name, labels, new_workspace_id, validate_name, volume_name


@pytest.mark.parametrize("name", ["a", "demo", "my-project-2", "x" * 63, "0abc"])
def test_valid_names_pass(name):
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "Demo",
        "-lead",
        "trail-",
        "under_score",
        "dot.s",
        "x" * 64,
        "spa ce",
        "ünicode",
        "demo\n",
    ],
)
def test_invalid_names_are_rejected_with_one_line(name):
    with pytest.raises(InvalidInput) as info:
        validate_name(name)
    assert "\n" not in info.value.message


def test_ids_are_short_hex_and_unique():
    ids = {new_workspace_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 12 and int(i, 16) >= 0 for i in ids)


def test_engine_names_come_from_the_id_not_the_name():
    assert volume_name("abc123", "home") == "dev8-abc123-home"
    assert volume_name("abc123", "system") == "dev8-abc123-system"
    assert container_name("abc123") == "dev8-abc123"
    with pytest.raises(InvalidInput):
        volume_name("abc123", "scratch")


def test_labels_carry_id_owner_role():
    assert labels("i", "o", "home", "n") == {
        "dev.dev8.workspace-id": "i",
        "dev.dev8.owner": "o",
        "dev.dev8.role": "home",
        "dev.dev8.name": "n",
    }
