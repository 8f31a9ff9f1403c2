"""The browser door's pure parts: where a sign-in may lead, one-time tickets, signed app
cookies, the bound on failed sign-ins, and the setting subdomain mode needs."""

from __future__ import annotations

import time

import pytest
from starlette.requests import Request

from dev8.core.errors import InvalidInput
from dev8.server.settings import Settings
from dev8.server.web.apps import hostname
from dev8.server.web.sessions import cookie_values, safe_next
from dev8.server.web.tickets import AppClaim, AppCookies, Tickets, derive_key
from dev8.store.secretbox import new_key

HOST = "w--alice.apps.test"


@pytest.mark.parametrize(
    ("asked", "goes"),
    [
        ("/@alice/w/?folder=/workspace", "/@alice/w/?folder=/workspace"),
        ("/", "/"),
        (None, "/"),
        ("", "/"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example/", "/"),
        ("evil", "/"),
        ("/a\r\nSet-Cookie: x=1", "/"),
        ("/" + "a" * 5000, "/"),
    ],
)
def test_a_sign_in_leads_only_to_a_path_of_this_host(asked, goes):
    assert safe_next(asked) == goes


@pytest.mark.parametrize(
    ("host", "name"),
    [
        ("W--Alice.Apps.Test:8443", "w--alice.apps.test"),
        ("w--alice.apps.test.", "w--alice.apps.test"),
        ("w--alice.apps.test:80@evil.example", None),
        ("w--alice.apps.test/evil", None),
        ("", None),
    ],
)
def test_hostname_takes_only_a_plain_name_and_port(host, name):
    assert hostname(host) == name


def test_a_ticket_is_good_once_and_for_its_host_only():
    tickets = Tickets()
    ticket = tickets.issue(HOST, "token-1")
    assert tickets.redeem(ticket, "v--alice.apps.test") is None
    assert tickets.redeem(ticket, HOST) is None  # tried once: gone
    ticket = tickets.issue(HOST, "token-1")
    assert tickets.redeem(ticket, HOST) == "token-1"
    assert tickets.redeem(ticket, HOST) is None


def test_tickets_expire_and_are_bounded_in_number():
    expired = Tickets(seconds=-1)
    assert expired.redeem(expired.issue(HOST, "t"), HOST) is None
    few = Tickets(limit=2)
    first = few.issue(HOST, "a")
    few.issue(HOST, "b")
    few.issue(HOST, "c")
    assert few.redeem(first, HOST) is None  # the oldest made room


def test_an_app_cookie_is_signed_and_bound_to_its_host_and_time():
    cookies = AppCookies(derive_key(new_key()))
    later = int(time.time()) + 60
    value = cookies.sign(AppClaim("token-1", HOST, later))
    assert cookies.verify(value, HOST) == AppClaim("token-1", HOST, later)
    assert cookies.verify(value, "v--alice.apps.test") is None
    assert cookies.verify(value, HOST, now=later + 1) is None
    assert AppCookies(derive_key(new_key())).verify(value, HOST) is None  # another server key
    statement, _, mac = value.partition(".")
    forged = AppCookies(b"k").sign(AppClaim("token-2", HOST, later)).partition(".")[0]
    assert cookies.verify(f"{forged}.{mac}", HOST) is None
    for garbage in ("", ".", "x.y", "%%%.%%%", statement):
        assert cookies.verify(garbage, HOST) is None


def test_the_cookie_key_is_not_the_secret_key():
    key = new_key()
    assert derive_key(key) != key.encode()
    assert derive_key(key) == derive_key(key)


def test_every_value_of_a_repeated_cookie_is_read():
    scope = {
        "type": "http",
        "headers": [
            (b"cookie", b"dev8_app=one; other=x; dev8_app=two"),
            (b"cookie", b"dev8_app=3"),
        ],
    }
    assert cookie_values(Request(scope), "dev8_app") == ["one", "two", "3"]


def test_subdomain_mode_needs_the_public_url(tmp_path):
    settings = Settings(server_dir=tmp_path, secret_key=new_key(), apps_domain="apps.test")
    with pytest.raises(InvalidInput, match="DEV8_APPS_DOMAIN needs DEV8_PUBLIC_URL"):
        settings.check()
    Settings(
        server_dir=tmp_path,
        secret_key=new_key(),
        apps_domain="apps.test",
        public_url="https://dev8.test",
    ).check()
