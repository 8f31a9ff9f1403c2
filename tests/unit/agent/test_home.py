"""Home preparation on a real file system in a temporary directory (the tests run as root,
as the agent does)."""

import os
import stat
from dataclasses import replace

import pytest

from dev8.agent import home
from dev8.agent.config import AgentConfig

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the agent runs as root; so must this")


def test_skeleton_fills_gaps_and_never_overwrites(tmp_path):
    skel, target = tmp_path / "skel", tmp_path / "home"
    (skel / ".config" / "tool").mkdir(parents=True)
    (skel / ".bashrc").write_text("image bashrc")
    (skel / ".config" / "tool" / "settings").write_text("image settings")
    (skel / ".profile").write_text("image profile")
    os.symlink(".bashrc", skel / ".link")
    target.mkdir()
    (target / ".bashrc").write_text("MY bashrc")
    (target / ".config").mkdir()

    copied = home.copy_missing_skeleton(skel, target, 1000, 1000)

    assert (target / ".bashrc").read_text() == "MY bashrc"
    assert (target / ".profile").read_text() == "image profile"
    assert (target / ".config" / "tool" / "settings").read_text() == "image settings"
    assert os.readlink(target / ".link") == ".bashrc"
    assert all(os.lstat(p).st_uid == 1000 for p in copied)
    assert home.copy_missing_skeleton(skel, target, 1000, 1000) == []


def test_root_owned_volume_is_given_to_the_user_once(tmp_path):
    volume = tmp_path / "vol"
    (volume / "sub").mkdir(parents=True)
    (volume / "sub" / "file").write_text("x")
    assert home.fix_ownership(volume, 1000, 1000) is True
    assert {os.lstat(p).st_uid for p in (volume, volume / "sub", volume / "sub" / "file")} == {1000}
    os.chown(volume / "sub" / "file", 0, 0)  # the user's own choice deeper down
    assert home.fix_ownership(volume, 1000, 1000) is False
    assert os.lstat(volume / "sub" / "file").st_uid == 0


def test_host_keys_are_generated_once(tmp_path):
    first = [p.read_bytes() for p in home.ensure_host_keys(tmp_path / "ssh")]
    second = [p.read_bytes() for p in home.ensure_host_keys(tmp_path / "ssh")]
    assert first == second and len(first) == 3
    key = tmp_path / "ssh" / "ssh_host_ed25519_key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert home.host_public_keys(tmp_path / "ssh")[0].startswith("ssh-ed25519 ")


def test_runtime_files(tmp_path):
    config = replace(
        AgentConfig(),
        run_dir=tmp_path / "run",
        github_token="ghp_secret",
        git_name='Ada "L"',
        git_email="ada@example.com",
        ssh_public_keys=("ssh-ed25519 AAAA a",),
    )
    for sub in ("ssh", "secrets"):
        (config.run_dir / sub).mkdir(parents=True)
    home.write_authorized_keys(config)
    home.write_git_identity(config)
    home.write_secrets(config)
    token = config.run_dir / "secrets" / "github-token"
    assert token.read_text() == "ghp_secret"
    assert stat.S_IMODE(token.stat().st_mode) == 0o400 and token.stat().st_uid == 1000
    assert (config.run_dir / "ssh" / "authorized_keys").read_text() == "ssh-ed25519 AAAA a\n"
    assert 'name = "Ada \\"L\\""' in (config.run_dir / "gitconfig").read_text()
    home.write_secrets(replace(config, github_token=""))
    assert not token.exists()
