from dev8.agent.packages.dpkg import (
    deb_identity,
    manual_packages,
    parse_auto_installed,
    parse_status,
    read_alternatives,
    unconfigured,
)

STATUS = """Package: vim
Status: install ok installed
Architecture: amd64
Version: 2:9.0.1378-2
Conffiles:
 /etc/vim/vimrc 2d4b5e5a9f5d8c1b0a2d9a1f7e0f6b1c
 /etc/vim/old 00000000000000000000000000000000 obsolete

Package: sl
Status: hold ok installed
Architecture: amd64
Version: 5.02-1+b1

Package: gone
Status: deinstall ok config-files
Version: 1.0

Package: half
Status: install ok half-configured
Version: 3
"""

EXTENDED = """Package: libtext-charwidth-perl
Architecture: amd64
Auto-Installed: 1

Package: vim
Architecture: amd64
Auto-Installed: 0
"""


def test_status_keeps_installed_packages_holds_and_live_conffiles():
    installed = parse_status(STATUS)
    assert set(installed) == {"vim", "sl", "half"}
    assert installed["vim"].version == "2:9.0.1378-2"
    assert installed["vim"].conffiles == (("/etc/vim/vimrc", "2d4b5e5a9f5d8c1b0a2d9a1f7e0f6b1c"),)
    assert installed["sl"].held and not installed["vim"].held


def test_interrupted_packages_are_found():
    assert unconfigured(STATUS) == ["half"]


def test_manual_marks_are_installed_minus_automatic():
    installed = parse_status(STATUS)
    assert manual_packages(installed, parse_auto_installed(EXTENDED)) == {"vim", "sl", "half"}
    assert parse_auto_installed(EXTENDED) == {"libtext-charwidth-perl"}


def test_deb_file_names():
    assert deb_identity("vim_2%3a9.0.1378-2_amd64.deb") == ("vim", "2:9.0.1378-2", "amd64")
    assert deb_identity("cowsay_3.03+dfsg2-8_all.deb") == ("cowsay", "3.03+dfsg2-8", "all")
    assert deb_identity("not-a-deb.txt") is None


def test_alternatives_read_mode_and_choice(tmp_path):
    state, links = tmp_path / "state", tmp_path / "links"
    state.mkdir()
    links.mkdir()
    (state / "editor").write_text("manual\n/usr/bin/editor\n\n/usr/bin/vim.basic\n100\n")
    (state / "java").write_text("auto\n/usr/bin/java\n")
    (links / "editor").symlink_to("/usr/bin/vim.basic")
    (links / "java").symlink_to("/usr/lib/jvm/java-17/bin/java")
    found = read_alternatives(state, links)
    assert found["editor"].manual and found["editor"].value == "/usr/bin/vim.basic"
    assert not found["java"].manual


def test_a_killed_dpkg_run_is_seen_in_its_journal(tmp_path):
    from dev8.agent.packages.dpkg import interrupted

    status, updates = tmp_path / "status", tmp_path / "updates"
    status.write_text("Package: a\nStatus: install ok installed\n\n")
    updates.mkdir()
    assert not interrupted(status, updates)
    (updates / "tmp.i").write_text("")  # dpkg's scratch file, not a journal entry
    assert not interrupted(status, updates)
    (updates / "0001").write_text("Package: a\nStatus: install ok unpacked\n")
    assert interrupted(status, updates)


def test_a_half_configured_package_is_an_interrupted_run(tmp_path):
    from dev8.agent.packages.dpkg import interrupted

    status = tmp_path / "status"
    status.write_text("Package: a\nStatus: install ok half-configured\n\n")
    assert interrupted(status, tmp_path / "no-updates")
