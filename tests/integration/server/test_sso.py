"""Single sign-on against a real OpenID Connect provider: ``oidc-provider-mock`` (PyPI) run
as its own process on loopback, with discovery, signed ID tokens, one-time codes and its
authorization form, which the test fills in as the user would (the subject, its claims set
beforehand through the mock's ``PUT /users/{sub}``). No stand-in on dev8's side: the real
application under uvicorn (``live.serving``, fake workspace provider, no engine).

The browser is an ``httpx.Client`` per person that keeps its cookies and follows each
redirect by hand, so that every hop can be looked at."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from dev8.core.users import ACCOUNT_DISABLED, Role
from tests.integration.server.live import wait_for
from tests.net import free_port

CLIENT_ID, CLIENT_SECRET = "dev8-tests", "dev8-tests-secret"


@pytest.fixture(scope="module")
def issuer() -> Iterator[str]:
    """The mock provider's process, ready when its discovery document answers."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "oidc_provider_mock", "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, "AUTHLIB_INSECURE_TRANSPORT": "1", "NO_COLOR": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert process.poll() is None, "oidc-provider-mock exited"
        try:
            return httpx.get(f"{url}/.well-known/openid-configuration").status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(ready, timeout=30, message="oidc-provider-mock answering")
        yield url
    finally:
        process.terminate()
        process.wait(10)


def person(issuer: str, sub: str, **claims: object) -> str:
    """Makes ``sub`` known to the provider with ``claims``; returns ``sub``."""
    answer = httpx.put(f"{issuer}/users/{sub}", json=claims)
    assert answer.status_code == 204, answer.text
    return sub


@pytest.fixture
def sso_api(make_api, issuer):
    def make(**overrides):
        settings = {
            "dev": True,  # plain-HTTP cookies, so that the test's client sends them back
            "oidc_issuer": issuer,
            "oidc_client_id": CLIENT_ID,
            "oidc_client_secret": CLIENT_SECRET,
            "oidc_name": "Mock IdP",
            "sso_allowed_domains": "example.com",
            "sso_admins": "boss@example.com",
            **overrides,
        }
        return make_api(**settings)

    return make


def start(browser: httpx.Client, next_path: str = "/somewhere") -> str:
    """Clicks the provider's button; the provider's authorization URL it leads to."""
    answer = browser.get("/login/oidc", params={"next": next_path})
    assert answer.status_code == 303, answer.text
    assert "dev8_sso" in browser.cookies
    return answer.headers["location"]


def authorize(authorize_url: str, sub: str) -> str:
    """At the provider, signs in as ``sub``; the callback URL the provider sends back to."""
    with httpx.Client() as provider_browser:
        form = provider_browser.get(authorize_url)
        assert form.status_code == 200 and "sub" in form.text
        answer = provider_browser.post(authorize_url, data={"sub": sub})
    assert answer.status_code in (302, 303), answer.text
    return answer.headers["location"]


def with_query(url: str, **values: str) -> str:
    parts = urlsplit(url)
    query = {key: value[0] for key, value in parse_qs(parts.query).items()}
    return urlunsplit(parts._replace(query=urlencode({**query, **values})))


def finish(browser: httpx.Client, callback_url: str) -> httpx.Response:
    parts = urlsplit(callback_url)
    return browser.get(f"{parts.path}?{parts.query}")


def signed_in_as(api, browser: httpx.Client) -> dict:
    session = browser.cookies.get("dev8_session")
    assert session, "no session cookie"
    answer = httpx.get(f"{api.url}/api/v1/users/me", headers={"Authorization": f"Bearer {session}"})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_sign_in_creates_a_member_and_gives_the_browser_session(sso_api, issuer):
    api = sso_api()
    sub = person(
        issuer,
        "alice-sub",
        email="Alice@Example.com",
        email_verified=True,
        preferred_username="Alice Smith!",
    )
    page = httpx.get(f"{api.url}/login").text
    assert 'href="/login/oidc?next=%2F"' in page and "Sign in with Mock IdP" in page
    with httpx.Client(base_url=api.url) as browser:
        authorize_url = start(browser)
        query = parse_qs(urlsplit(authorize_url).query)
        assert authorize_url.startswith(f"{issuer}/oauth2/authorize")
        assert query["code_challenge_method"] == ["S256"] and query["code_challenge"]
        assert query["nonce"] and query["state"] and query["client_id"] == [CLIENT_ID]
        assert query["redirect_uri"] == [f"{api.url}/login/oidc/callback"]
        done = finish(browser, authorize(authorize_url, sub))
        assert done.status_code == 303, done.text
        assert done.headers["location"] == "/somewhere"
        me = signed_in_as(api, browser)
    assert me["name"] == "alice-smith" and me["role"] == "member"
    identity = api.context.store.identities.get(issuer, "alice-sub")
    assert identity is not None and identity.email == "alice@example.com"
    # The same person again: the same user, found by issuer and subject.
    person(issuer, sub, email="renamed@example.com", email_verified=True, preferred_username="x")
    with httpx.Client(base_url=api.url) as browser:
        assert finish(browser, authorize(start(browser), sub)).status_code == 303
        assert signed_in_as(api, browser)["name"] == "alice-smith"
    assert len(api.context.store.users.list()) == 2  # the bootstrap admin and alice


def test_names_are_made_unique_and_admins_come_from_the_list(sso_api, issuer):
    api = sso_api()
    api.context.accounts.create_user("boss", "boss-password-1", Role.MEMBER)
    sub = person(issuer, "boss-sub", email="boss@example.com", email_verified=True)
    with httpx.Client(base_url=api.url) as browser:
        assert finish(browser, authorize(start(browser), sub)).status_code == 303
        me = signed_in_as(api, browser)
    assert me["name"] == "boss-2" and me["role"] == "admin"


@pytest.mark.parametrize(
    "claims",
    [
        {"email": "eve@elsewhere.org", "email_verified": True},
        {"email": "eve@example.com", "email_verified": False},  # an address not vouched for
        {"email": "eve@example.com"},
    ],
    ids=["other-domain", "unverified", "no-verified-claim"],
)
def test_outside_the_allow_list_is_refused_and_nothing_is_created(sso_api, issuer, claims):
    api = sso_api()
    sub = person(issuer, f"eve-{len(claims)}-{claims.get('email_verified')}", **claims)
    with httpx.Client(base_url=api.url) as browser:
        refused = finish(browser, authorize(start(browser), sub))
        assert refused.status_code == 403
        assert "may not sign in" in refused.text
        assert "dev8_session" not in browser.cookies
    assert [user.name for user in api.context.store.users.list()] == ["admin"]
    assert api.context.store.identities.get(issuer, sub) is None


def test_an_empty_allow_list_lets_nobody_in(sso_api, issuer):
    api = sso_api(sso_allowed_domains="", sso_admins="")
    sub = person(issuer, "carol-sub", email="carol@example.com", email_verified=True)
    with httpx.Client(base_url=api.url) as browser:
        assert finish(browser, authorize(start(browser), sub)).status_code == 403


def test_a_tampered_state_is_refused(sso_api, issuer):
    api = sso_api()
    sub = person(issuer, "dave-sub", email="dave@example.com", email_verified=True)
    with httpx.Client(base_url=api.url) as browser:
        callback = authorize(start(browser), sub)
        refused = finish(browser, with_query(callback, state="forged-state"))
        assert refused.status_code == 401 and "sign in again" in refused.text
        # Nor does the right state work from a browser that did not start the sign-in.
    with httpx.Client(base_url=api.url) as other_browser:
        assert finish(other_browser, callback).status_code == 401
    assert api.context.store.identities.get(issuer, sub) is None


def test_a_replayed_code_is_refused(sso_api, issuer):
    api = sso_api()
    sub = person(issuer, "frank-sub", email="frank@example.com", email_verified=True)
    with httpx.Client(base_url=api.url) as browser:
        authorize_url = start(browser)
        flow_cookie = browser.cookies["dev8_sso"]
        callback = authorize(authorize_url, sub)
        assert finish(browser, callback).status_code == 303
        # The very same callback, flow cookie and all: taken once only.
        browser.cookies.set("dev8_sso", flow_cookie, domain="127.0.0.1", path="/login/")
        assert finish(browser, callback).status_code == 401
        # The used code under a fresh sign-in's state: the provider refuses it.
        fresh_state = parse_qs(urlsplit(start(browser)).query)["state"][0]
        code = parse_qs(urlsplit(callback).query)["code"][0]
        replayed = finish(browser, with_query(callback, code=code, state=fresh_state))
        assert replayed.status_code == 401
        assert "did not accept this sign-in" in replayed.text


def test_an_id_token_for_another_nonce_is_refused(sso_api, issuer):
    """A code the provider issued for another nonce (an attacker's own sign-in, say),
    brought back under this browser's state."""
    api = sso_api()
    sub = person(issuer, "grace-sub", email="grace@example.com", email_verified=True)
    with httpx.Client(base_url=api.url) as browser:
        authorize_url = start(browser)
        foreign = with_query(authorize_url, nonce="someone-elses-nonce")
        refused = finish(browser, authorize(foreign, sub))
        assert refused.status_code == 401
        assert "ID token is not valid" in refused.text and "nonce" in refused.text
    assert api.context.store.identities.get(issuer, sub) is None


def test_a_deleted_user_cannot_sign_in_again(sso_api, issuer):
    api = sso_api()
    sub = person(issuer, "heidi-sub", email="heidi@example.com", email_verified=True)
    with httpx.Client(base_url=api.url) as browser:
        assert finish(browser, authorize(start(browser), sub)).status_code == 303
    api.context.accounts.delete_user(api.context.accounts.user("heidi"))
    with httpx.Client(base_url=api.url) as browser:
        refused = finish(browser, authorize(start(browser), sub))
        assert refused.status_code == 403 and "removed" in refused.text
    assert api.context.store.users.by_name("heidi") is None


def test_a_disabled_user_cannot_sign_in_until_enabled(sso_api, issuer):
    api = sso_api()
    sub = person(issuer, "ivan-sub", email="ivan@example.com", email_verified=True)
    with httpx.Client(base_url=api.url) as browser:
        assert finish(browser, authorize(start(browser), sub)).status_code == 303
    accounts = api.context.accounts
    accounts.change(accounts.user("ivan"), disabled=True)
    users = [user.name for user in accounts.users.list()]
    with httpx.Client(base_url=api.url) as browser:
        refused = finish(browser, authorize(start(browser), sub))
        assert refused.status_code == 401 and ACCOUNT_DISABLED in refused.text
        assert "dev8_session" not in browser.cookies
    assert [user.name for user in accounts.users.list()] == users  # no new member
    accounts.change(accounts.user("ivan"), disabled=False)
    with httpx.Client(base_url=api.url) as browser:
        assert finish(browser, authorize(start(browser), sub)).status_code == 303
        assert signed_in_as(api, browser)["name"] == "ivan"


def test_password_login_can_be_turned_off(sso_api, issuer):
    api = sso_api(password_login=False, admin_password="admin-password-for-tests")
    page = httpx.get(f"{api.url}/login").text
    assert "Sign in with Mock IdP" in page and 'name="password"' not in page
    form = {"username": "admin", "password": "admin-password-for-tests", "next": "/"}
    assert httpx.post(f"{api.url}/login", data=form).status_code == 403
    body = {"username": "admin", "password": "admin-password-for-tests"}
    answer = httpx.post(f"{api.url}/api/v1/auth/login", json=body)
    assert answer.status_code == 403 and answer.json()["error"] == "forbidden"
