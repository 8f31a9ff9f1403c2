import shutil
import subprocess
from pathlib import Path

import pytest

from dev8.cli.ssh import (
    BEGIN_MARK,
    END_MARK,
    HostEntry,
    config_path,
    proxy_command,
    render_hosts_file,
    render_known_hosts,
    render_user_config,
    ssh_argv,
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
        ["/usr/bin/dev8"],
        Path("/k/id"),
        Path("/k/known"),
    )
    assert "Host dev8.api\n" in text and "Host dev8.web\n" in text
    assert "ProxyCommand /usr/bin/dev8 ssh-proxy web" in text
    assert "HostKeyAlias dev8-222" in text
    assert "StrictHostKeyChecking yes" in text
    assert "  ServerAliveInterval 15\n  ServerAliveCountMax 4\n" in text


def test_paths_with_spaces_are_quoted_for_the_shell_and_for_ssh():
    text = render_hosts_file(
        [HostEntry("web", "222")],
        ["/Applications/My Tools/dev8"],
        Path("/home/me/dev8 data/ssh/id_ed25519"),
        Path("/home/me/dev8 data/ssh/known_hosts"),
    )
    assert "  ProxyCommand '/Applications/My Tools/dev8' ssh-proxy web\n" in text
    assert '  IdentityFile "/home/me/dev8 data/ssh/id_ed25519"\n' in text
    assert '  UserKnownHostsFile "/home/me/dev8 data/ssh/known_hosts"\n' in text


def test_percent_signs_are_not_taken_for_ssh_tokens():
    assert proxy_command(["/opt/100%/dev8"], "web") == "/opt/100%%/dev8 ssh-proxy web"
    assert config_path(Path("/a b/100%")) == '"/a b/100%%"'
    assert config_path(Path("/a b/100%"), tokens=False) == '"/a b/100%"'  # Include


def test_a_session_gets_a_terminal_unless_a_command_is_given():
    destination = ["-p", "2200", "dev8@127.0.0.1"]
    assert ssh_argv("1", destination, [])[-4:] == ["-t", *destination]
    assert ssh_argv("1", destination, ["ls", "-l"])[-5:] == [*destination, "ls", "-l"]


needs_ssh = pytest.mark.skipif(shutil.which("ssh") is None, reason="needs the OpenSSH client")


def ssh_settings(*argv: str) -> dict[str, str]:
    """What ``ssh -G`` (which connects nowhere) makes of ``argv``."""
    out = subprocess.run(["ssh", "-G", *argv], capture_output=True, text=True, check=True)
    return dict(line.split(" ", 1) for line in out.stdout.splitlines() if " " in line)


@needs_ssh
def test_ssh_reads_the_written_entry_back(tmp_path):
    data = tmp_path / "dev8 data"
    data.mkdir()
    hosts = data / "config"
    hosts.write_text(
        render_hosts_file(
            [HostEntry("web", "222")], [str(tmp_path / "my bin" / "dev8")], data / "id", data / "kh"
        )
    )
    user_config = tmp_path / "ssh_config"
    user_config.write_text(render_user_config("", hosts))
    got = ssh_settings("-F", str(user_config), "dev8.web")
    assert got["proxycommand"] == f"'{tmp_path}/my bin/dev8' ssh-proxy web"
    assert got["userknownhostsfile"] == f"{data}/kh"
    assert got["hostkeyalias"] == "dev8-222" and got["user"] == "dev8"
    assert (got["serveraliveinterval"], got["serveralivecountmax"]) == ("15", "4")


@needs_ssh
def test_the_proxy_command_runs_a_program_under_a_path_with_spaces(tmp_path):
    """ssh itself runs the ProxyCommand it parsed (a stand-in dev8 that records its
    arguments and exits, so the connection then fails)."""
    program = tmp_path / "my bin" / "dev8"
    program.parent.mkdir()
    record = tmp_path / "arguments"
    program.write_text(f'#!/bin/sh\nprintf "%s|" "$@" > "{record}"\n')
    program.chmod(0o755)
    hosts = tmp_path / "hosts"
    entry = HostEntry("web", "222")
    hosts.write_text(render_hosts_file([entry], [str(program)], tmp_path / "k", tmp_path / "kh"))
    subprocess.run(
        ["ssh", "-F", str(hosts), "-o", "BatchMode=yes", "dev8.web", "true"],
        capture_output=True,
        timeout=30,
    )
    assert record.read_text() == "ssh-proxy|web|"


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
    hosts_file, written = write_ssh_config([HostEntry("api", "111")], ["dev8"], user_config=link)
    assert link.is_symlink() and written == real
    assert real.read_text().endswith(USER_CONFIG)
    assert "Host dev8.api" in hosts_file.read_text()
