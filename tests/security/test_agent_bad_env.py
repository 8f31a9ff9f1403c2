"""Issue 16, item 12 (in part): a bad ``DEV8_*`` value cannot crash-loop a member's agent.

A member sets their workspace's environment, and the agent reads some ``DEV8_*`` settings
from it. Before, ``DEV8_RESTORE_TIMEOUT=soon`` raised at import (the agent exited, Docker
restarted it, it exited again), ``DEV8_QUOTA_HOME_BYTES=²`` passed ``isdigit`` and raised in
``int``, ``DEV8_DISK_INTERVAL=inf`` made the disk thread's wait raise. Now each bad value
costs one warning line and its default is used.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

from dev8.agent import config as agent_config
from dev8.agent.config import AgentConfig, from_environment
from dev8.core.quotas import DEFAULT_QUOTAS

BAD_NUMBERS = ["soon", "nan", "inf", "-inf", "-5", "1e999", "²", "9" * 5000, "0x10", "\udcff"]
DEFAULTS = AgentConfig()


@pytest.fixture(autouse=True)
def fresh_warnings():
    agent_config._warn.cache_clear()  # (each value warns once per process)
    yield
    agent_config._warn.cache_clear()


def warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


@pytest.mark.parametrize("value", BAD_NUMBERS)
def test_bad_seconds_fall_back_with_one_warning_each(value, caplog):
    env = {"DEV8_DISK_INTERVAL": value, "DEV8_RESTORE_TIMEOUT": value}
    config = from_environment(env)
    from_environment(env)  # read again (the entry point does): no second line
    assert config.disk_interval == DEFAULTS.disk_interval
    assert config.restore_timeout == DEFAULTS.restore_timeout
    lines = warnings(caplog)
    assert len(lines) == 2 and all("using the default" in line for line in lines)
    assert lines[0].startswith("DEV8_DISK_INTERVAL=") and len(lines[0]) < 200


@pytest.mark.parametrize("value", [*BAD_NUMBERS, "1", "1048575", "1.5", str(2**63), "30g"])
def test_bad_quotas_fall_back_with_one_warning_each(value, caplog):
    config = from_environment(
        {"DEV8_QUOTA_HOME_BYTES": value, "DEV8_QUOTA_WORKSPACE_BYTES": str(2 * 1024**3)}
    )
    assert config.quotas == {**DEFAULT_QUOTAS, "workspace": 2 * 1024**3}
    [line] = warnings(caplog)
    assert line.startswith("DEV8_QUOTA_HOME_BYTES=") and "using the default 20.0 GiB" in line


def test_good_values_are_taken_without_a_word(caplog):
    config = from_environment(
        {
            "DEV8_DISK_INTERVAL": " 2.5 ",
            "DEV8_RESTORE_TIMEOUT": "0",
            "DEV8_QUOTA_HOME_BYTES": str(1024**2),
        }
    )
    assert (config.disk_interval, config.restore_timeout) == (2.5, 0.0)
    assert config.quotas["home"] == 1024**2
    assert warnings(caplog) == []


def test_the_agent_entry_point_starts_with_bad_values_and_warns_once_each():
    """The entry module as the container runs it (``python -m dev8.agent`` imports it, then
    ``main`` reads the configuration again and sets the dotfiles up); stopped short of
    starting sshd and the IDE on this machine."""
    env = {
        **os.environ,
        "DEV8_RESTORE_TIMEOUT": "soon",
        "DEV8_DISK_INTERVAL": "inf",
        "DEV8_QUOTA_HOME_BYTES": "²",
        "DEV8_DOTFILES_REPO": "ext::sh -c 'touch /tmp/pwned'",
    }
    script = (
        "import os\n"
        "from dev8.agent import __main__ as entry\n"
        "config = entry.from_environment(os.environ)\n"
        "assert entry.dotfiles_setup(config).repo == ''\n"
        "print(config.restore_timeout, config.disk_interval, config.quotas['home'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["120.0", "60.0", str(20 * 1024**3)]
    lines = done.stderr.splitlines()
    assert len(lines) == 4 and "Traceback" not in done.stderr
    for name in ("DEV8_RESTORE_TIMEOUT", "DEV8_DISK_INTERVAL", "DEV8_QUOTA_HOME_BYTES"):
        assert sum(line.startswith(f"{name}=") for line in lines) == 1
    assert sum("invalid dotfiles repository" in line for line in lines) == 1
