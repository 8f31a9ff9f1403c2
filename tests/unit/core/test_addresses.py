"""The public addresses of workspaces behind `dev8 server`, and parsing app hosts back."""

from __future__ import annotations

import pytest

from dev8.core.addresses import Addresses, AppTarget, app_label, parse_app_host

APPS = "apps.example.com"


def test_path_mode_without_an_apps_domain() -> None:
    addresses = Addresses("https://dev8.example.com")
    assert addresses.ide("alice", "web") == "https://dev8.example.com/@alice/web/"
    assert addresses.port("alice", "web", 3000) is None
    assert addresses.port_template("alice", "web") == (
        "https://dev8.example.com/@alice/web/proxy/{{port}}/"
    )


def test_subdomain_mode_gives_each_ide_and_port_its_own_origin() -> None:
    addresses = Addresses("https://dev8.example.com:8443", APPS)
    assert addresses.ide("alice", "web") == f"https://web--alice.{APPS}:8443/"
    assert addresses.port("alice", "web", 3000) == f"https://web--alice--3000.{APPS}:8443/"
    assert (
        addresses.port_template("alice", "web") == f"https://web--alice--{{{{port}}}}.{APPS}:8443/"
    )


@pytest.mark.parametrize(
    ("name", "owner"),
    [
        ("a--b", "alice"),
        ("web", "al--ice"),
        ("web", "alice.smith"),
        ("web", "al_ice"),
        ("x" * 40, "y" * 30),
    ],
)
def test_names_that_cannot_be_one_dns_label_fall_back_to_path_mode(name: str, owner: str) -> None:
    addresses = Addresses("https://dev8.example.com", APPS)
    assert app_label(AppTarget(name, owner)) is None
    assert addresses.ide(owner, name) == f"https://dev8.example.com/@{owner}/{name}/"
    assert addresses.port(owner, name, 3000) is None


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        (f"web--alice.{APPS}", AppTarget("web", "alice")),
        (f"WEB--Alice.{APPS.upper()}:8443", AppTarget("web", "alice")),
        (f"web--alice--3000.{APPS}", AppTarget("web", "alice", 3000)),
        (f"web--alice--3000.{APPS}.", AppTarget("web", "alice", 3000)),
        (f"web--alice--0.{APPS}", None),
        (f"web--alice--03000.{APPS}", None),
        (f"web--alice--70000.{APPS}", None),
        (f"web--alice--x.{APPS}", None),
        (f"web.{APPS}", None),
        (f"a--b--alice--3000.{APPS}", None),
        (f"web--alice.other.{APPS}", None),
        ("web--alice.example.org", None),
        (APPS, None),
        ("dev8.example.com", None),
        ("", None),
        (f"web--alice.{APPS}:80@evil.example", None),
        (f"web--alice.{APPS}:x", None),
        (f"web--alice.{APPS}:80:81", None),
    ],
)
def test_parse_app_host(host: str, expected: AppTarget | None) -> None:
    assert parse_app_host(host, APPS) == expected


def test_every_address_made_parses_back() -> None:
    addresses = Addresses("http://dev8.test:8700", APPS)
    for target in (AppTarget("web", "alice"), AppTarget("db-1", "bob", 5432)):
        url = (
            addresses.port(target.owner, target.name, target.port)
            if target.port
            else (addresses.ide(target.owner, target.name))
        )
        assert url is not None
        host = url.split("://", 1)[1].split("/", 1)[0]
        assert parse_app_host(host, APPS) == target
