"""The Kubernetes backend's settings, its exec command line, and its registration (pure; no
cluster)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dev8.core.errors import InvalidInput
from dev8.core.quotas import GIB
from dev8.providers.kubernetes.execute import as_user
from dev8.providers.kubernetes.settings import DEFAULT_START_TIMEOUT_S, kubernetes_settings
from dev8.providers.kubernetes.specs import ClusterOptions
from dev8.providers.registry import BACKENDS


def test_settings_default_to_the_dev8_namespace_and_the_default_storage_class():
    settings = kubernetes_settings({})
    assert settings.options == ClusterOptions()
    assert settings.context is None and settings.start_timeout_s == DEFAULT_START_TIMEOUT_S


def test_settings_come_from_the_environment():
    settings = kubernetes_settings(
        {
            "DEV8_KUBERNETES_NAMESPACE": "workspaces",
            "DEV8_KUBERNETES_STORAGE_CLASS": "fast-ssd",
            "DEV8_KUBERNETES_SYSTEM_CLAIM": "20g",
            "DEV8_KUBERNETES_SERVER_NAMESPACE": "dev8-system",
            "DEV8_KUBERNETES_CONTEXT": "prod",
            "DEV8_KUBERNETES_START_TIMEOUT": "120",
        }
    )
    assert settings.options == ClusterOptions(
        namespace="workspaces",
        storage_class="fast-ssd",
        system_claim_bytes=20 * GIB,
        server_namespace="dev8-system",
    )
    assert (settings.context, settings.start_timeout_s) == ("prod", 120.0)


@pytest.mark.parametrize(
    ("variable", "value"),
    [("DEV8_KUBERNETES_SYSTEM_CLAIM", "lots"), ("DEV8_KUBERNETES_START_TIMEOUT", "-1")],
)
def test_a_malformed_setting_is_refused_with_its_name(variable: str, value: str):
    with pytest.raises(InvalidInput, match=variable):
        kubernetes_settings({variable: value})


def test_exec_runs_as_the_user_in_the_directory_asked_for():
    assert as_user(["id", "-u"], "dev8", "/workspace") == [
        "runuser",
        "-u",
        "dev8",
        "--",
        "env",
        "--chdir=/workspace",
        "HOME=/home/dev8",
        "USER=dev8",
        "LOGNAME=dev8",
        "id",
        "-u",
    ]
    assert as_user(["true"], "root", None) == [
        "env",
        "HOME=/root",
        "USER=root",
        "LOGNAME=root",
        "true",
    ]


def test_the_backend_is_registered_and_imported_only_when_chosen():
    assert BACKENDS["kubernetes"] == "dev8.providers.kubernetes.provider:KubernetesProvider"
    code = (
        "import sys, dev8.providers.registry; "
        "sys.exit('kubernetes' in sys.modules or 'dev8.providers.kubernetes' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
