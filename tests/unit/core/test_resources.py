import pytest

from dev8.core.errors import InvalidInput
from dev8.core.resources import PRESETS, Resources, parse_memory_mb, resolve_resources


def test_presets_match_the_documented_sizes():
    assert PRESETS["micro"] == Resources(1, 2048)
    assert PRESETS["small"] == Resources(2, 4096)
    assert PRESETS["medium"] == Resources(4, 8192)
    assert PRESETS["large"] == Resources(8, 16384)


def test_default_is_small_and_explicit_values_override():
    assert resolve_resources() == Resources(2, 4096)
    assert resolve_resources("large", cpus="3") == Resources(3, 16384)
    assert resolve_resources("micro", memory="6g") == Resources(1, 6144)


@pytest.mark.parametrize(
    "text,mb", [("512m", 512), ("4g", 4096), ("4GiB", 4096), ("1.5g", 1536), ("2048", 2048)]
)
def test_memory_sizes(text, mb):
    assert parse_memory_mb(text) == mb


@pytest.mark.parametrize(
    "kwargs",
    [{"preset": "huge"}, {"cpus": "lots"}, {"cpus": "0"}, {"memory": "12x"}, {"memory": "100m"}],
)
def test_bad_resources_are_rejected(kwargs):
    with pytest.raises(InvalidInput):
        resolve_resources(**kwargs)
