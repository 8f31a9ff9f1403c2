from dev8.imagebuild.apt_sources import (
    mirror_for,
    parse_deb822_sources,
    parse_one_line_sources,
    render_debian_sources,
)

DEB822 = """Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main

Types: deb-src
URIs: http://src.example/debian
Suites: bookworm
Components: main

Enabled: no
Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
Components: main
"""


def test_deb822_sources_skip_sources_and_disabled_stanzas():
    sources = parse_deb822_sources(DEB822)
    assert [s.uri for s in sources] == [
        "http://deb.debian.org/debian",
        "http://deb.debian.org/debian-security",
    ]
    assert mirror_for(sources, "bookworm") == "http://deb.debian.org/debian"
    assert mirror_for(sources, "bookworm-security") == "http://deb.debian.org/debian-security"
    assert mirror_for(sources, "trixie") is None


def test_one_line_sources_with_options():
    text = (
        "# comment\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian/ bookworm main contrib\n"
        "deb-src http://mirror.example/debian bookworm main\n"
        "deb https://packages.example/apt cloud-sdk main\n"
    )
    sources = parse_one_line_sources(text)
    assert mirror_for(sources, "bookworm") == "http://mirror.example/debian"
    assert len(sources) == 2


def test_rendered_sources_round_trip():
    text = render_debian_sources("http://m/debian", "http://m/security", "bookworm")
    sources = parse_deb822_sources(text)
    assert mirror_for(sources, "bookworm-updates") == "http://m/debian"
    assert mirror_for(sources, "bookworm-security") == "http://m/security"
