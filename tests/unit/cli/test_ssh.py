from pathlib import Path

from dev8.cli.ssh import (
    BEGIN_MARK,
    END_MARK,
    HostEntry,
    render_hosts_file,
    render_known_hosts,
    render_user_config,
    write_ssh_config,
)

USER_CONFIG = "Host work\n  HostName work.example\n  User me\n\nHost *\n  ServerAliveInterval 30\n"


def test_managed_block_goes_first_and_keeps_user_entries():
    updated = render_user_config(USER_CONFIG, Path("/d/ssh/config"))
    assert updated.startswith(BEGIN_MARK)
    assert updated.endswith(USER_CONFIG)
    assert "Include /d/ssh/config" in updated


def test_rerunning_replaces_only_the_block():
    once = render_user_config(USER_CONFIG, Path("/old/config"))
    twice = render_user_config(once, Path("/new/config"))
    assert twice.count(BEGIN_MARK) == 1 and twice.count(END_MARK) == 1
    assert "/old/config" not in twice and "Include /new/config" in twice
    assert twice.endswith(USER_CONFIG)
    assert render_user_config(twice, Path("/new/config")) == twice


def test_block_in_the_middle_stays_where_the_user_put_it():
    middle = "# mine\n" + render_user_config("", Path("/a")) + USER_CONFIG
    updated = render_user_config(middle, Path("/b"))
    assert updated.startswith("# mine\n") and updated.endswith(USER_CONFIG)


def test_hosts_file_has_one_entry_per_workspace():
    text = render_hosts_file(
        [HostEntry("api", "111"), HostEntry("web", "222")],
        "/usr/bin/dev8",
        Path("/k/id"),
        Path("/k/known"),
    )
    assert "Host dev8.api\n" in text and "Host dev8.web\n" in text
    assert "ProxyCommand /usr/bin/dev8 ssh-proxy web" in text
    assert "HostKeyAlias dev8-222" in text
    assert "StrictHostKeyChecking yes" in text


def test_known_hosts_lines_are_replaced_per_alias():
    existing = "dev8-a ssh-ed25519 OLD\nother ssh-rsa KEEP\n"
    updated = render_known_hosts(existing, "dev8-a", ["ssh-ed25519 NEW", "ssh-rsa NEW2"])
    assert updated == "other ssh-rsa KEEP\ndev8-a ssh-ed25519 NEW\ndev8-a ssh-rsa NEW2\n"


def test_write_ssh_config_follows_a_symlinked_user_config(tmp_path):
    real = tmp_path / "dotfiles" / "ssh_config"
    real.parent.mkdir()
    real.write_text(USER_CONFIG)
    link = tmp_path / ".ssh" / "config"
    link.parent.mkdir()
    link.symlink_to(real)
    hosts_file, written = write_ssh_config([HostEntry("api", "111")], "dev8", user_config=link)
    assert link.is_symlink() and written == real
    assert real.read_text().endswith(USER_CONFIG)
    assert "Host dev8.api" in hosts_file.read_text()
