import pytest

from dev8.core.errors import InvalidInput
from dev8.core.quotas import (
    DEFAULT_QUOTAS,
    GIB,
    QuotaUse,
    effective_quotas,
    format_bytes,
    parse_quota,
    parse_size,
    quota_env_name,
    quota_environment,
    quotas_from_environment,
)


def test_defaults_are_the_seeds_max_recommended_sizes():
    assert DEFAULT_QUOTAS == {"home": 20 * GIB, "workspace": 100 * GIB}


@pytest.mark.parametrize(
    "text,size",
    [
        ("30g", 30 * GIB),
        ("30G", 30 * GIB),
        ("30GiB", 30 * GIB),
        ("512m", 512 * 1024**2),
        ("1.5t", int(1.5 * 1024**4)),
        ("2048", 2048),
        (" 1k ", 1024),
    ],
)
def test_sizes(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "lots", "12x", "-5g", "g"])
def test_bad_sizes_are_one_clear_error(text):
    with pytest.raises(InvalidInput, match="invalid size"):
        parse_size(text)


def test_a_quota_below_one_mebibyte_is_a_typo():
    with pytest.raises(InvalidInput, match="minimum"):
        parse_quota("100k")


def test_configured_quotas_override_defaults_and_round_trip_through_the_environment():
    configured = {"home": 30 * GIB}
    assert effective_quotas(configured) == {"home": 30 * GIB, "workspace": 100 * GIB}
    env = quota_environment(configured)
    assert env == {
        "DEV8_QUOTA_HOME_BYTES": str(30 * GIB),
        "DEV8_QUOTA_WORKSPACE_BYTES": str(100 * GIB),
    }
    assert quotas_from_environment(env) == effective_quotas(configured)
    assert quota_env_name("home") == "DEV8_QUOTA_HOME_BYTES"


def test_malformed_environment_values_fall_back_to_defaults():
    env = {"DEV8_QUOTA_HOME_BYTES": "lots", "DEV8_QUOTA_WORKSPACE_BYTES": "0"}
    assert quotas_from_environment(env) == DEFAULT_QUOTAS


@pytest.mark.parametrize(
    "used,level",
    [
        (0, "ok"),
        (79, "ok"),
        (80, "warning"),
        (94, "warning"),
        (95, "critical"),
        (100, "critical"),
        (101, "over"),
    ],
)
def test_levels_at_80_and_95_percent(used, level):
    use = QuotaUse("home", used, 100)
    assert use.level == level
    assert (use.warning() is None) == (level == "ok")


def test_warning_names_the_volume_its_use_and_what_to_do():
    text = QuotaUse("workspace", 9 * GIB, 10 * GIB).warning()
    assert text is not None
    assert text.startswith("workspace volume nearly full: workspace 9.0 GiB of 10.0 GiB (90%)")
    assert "dev8 du" in text and "dev8 clean" in text


def test_format_bytes():
    assert format_bytes(0) == "0 B"
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(20 * GIB) == "20.0 GiB"
    assert format_bytes(3 * 1024**4) == "3.0 TiB"
