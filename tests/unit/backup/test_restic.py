"""Repository configuration, the password file and restic's command lines."""

import os

import pytest

from dev8.backup import restic
from dev8.core.errors import InvalidInput


def test_default_repository_is_a_directory_in_the_data_dir(tmp_path):
    repository = restic.configured_repository(tmp_path, {})
    assert repository.url == str(tmp_path / "snapshots") and not repository.remote
    assert repository.argument == "/repo"


def test_environment_then_saved_setting(tmp_path):
    restic.save_repository(tmp_path, restic.Repository("/srv/snaps"))
    assert (tmp_path / "snapshots.json").stat().st_mode & 0o777 == 0o600
    assert restic.configured_repository(tmp_path, {}).url == "/srv/snaps"
    env = {"DEV8_SNAPSHOT_REPOSITORY": "azure:box:/snaps"}
    found = restic.configured_repository(tmp_path, env)
    assert found.remote and found.argument == "azure:box:/snaps"


@pytest.mark.parametrize("url", ["relative/dir", "sftp:host:/x", "b2:bucket"])
def test_unsupported_repositories_are_refused(url):
    with pytest.raises(InvalidInput):
        restic.Repository(url).validate()


def test_password_is_generated_once_with_mode_0600(tmp_path):
    assert restic.password(tmp_path, {}, create=False) is None
    first = restic.password(tmp_path, {}, create=True)
    assert first and len(first) > 30
    assert os.stat(tmp_path / "snapshot-password").st_mode & 0o777 == 0o600
    assert restic.password(tmp_path, {}, create=True) == first
    assert restic.password(tmp_path, {"DEV8_SNAPSHOT_PASSWORD": "env"}, create=True) == "env"


def test_secrets_go_on_stdin_not_in_argv(tmp_path):
    env = {"AZURE_ACCOUNT_NAME": "acct", "AZURE_ACCOUNT_KEY": "k3y", "UNRELATED": "x"}
    stdin = restic.stdin_secrets(env, "pw")
    assert stdin == b"AZURE_ACCOUNT_NAME=acct\nAZURE_ACCOUNT_KEY=k3y\n\npw\n"
    argv = restic.restic_argv(restic.Repository("azure:c:/p"), ["snapshots"])
    assert "k3y" not in " ".join(argv) and "pw" not in argv[2].split()
    assert "--cache-dir /cache" in argv[2]
    with pytest.raises(InvalidInput, match="line break"):
        restic.stdin_secrets({"AWS_ACCESS_KEY_ID": "a\nb"}, "pw")


def test_backup_args_use_the_workspace_paths_and_a_host_per_workspace():
    args = restic.backup_args("abc", "demo", ["home", "workspace"])
    assert args[:5] == ["backup", "--json", "--host", "dev8-abc", "--tag"]
    assert args[-2:] == ["/home/dev8", "/workspace"]
    assert "/home/dev8/.dev8-restore" in args and "name=demo" in args


def test_retention():
    assert restic.retention_args(2, None, 4) == ["--keep-last", "2", "--keep-weekly", "4"]
    assert restic.retention_args(None, None, None) == []
    with pytest.raises(InvalidInput, match="at least 1"):
        restic.retention_args(0, None, None)


def test_restic_replaces_the_shell_that_read_the_secrets():
    script = restic.restic_argv(restic.Repository("/r"), ["snapshots"], live_output=True)[2]
    assert script.rstrip().splitlines()[-1] == "exec restic -r /repo --no-cache snapshots 1>&2"


def test_a_restore_fetches_into_the_scratch_directory_without_a_lock():
    args = restic.fetch_args("f00d", ["home", "workspace"])
    assert args == [
        "--no-lock", "restore", "f00d", "--target", "/scratch/tree",
        "--include", "/home/dev8", "--include", "/workspace",
    ]  # fmt: skip
