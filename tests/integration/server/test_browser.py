"""The browser's door, against the real app under uvicorn: signing in and out, the IDE in
path mode, subdomain mode's ticket exchange, and port sharing.

Stand-ins (no engine): the provider and agent client are the fakes of ``tests.fakes``; the
relay's ``upstream_for`` still finds the workspace and refuses what it refuses, but points
the stream at ``tests.standins``'s agent, which relays to an echoing web server and an
echoing WebSocket server in place of code-server and a user's app.
"""

from __future__ import annotations

import socket
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from dev8.server import relay
from dev8.server.relay import Upstream
from tests.integration.server.live import ADMIN_PASSWORD, IMAGE, http_client
from tests.standins import EchoHttp, EchoWebSocket, LoopThread, StandInAgent

MAIN = "dev8.test"
APPS = "apps.test"
IDE = f"w--alice.{APPS}"
PORT_HOST = f"w--alice--3000.{APPS}"
WS_PORT = 3001
TOKEN = "stand-in-agent-token"


@pytest.fixture(scope="module")
def standins():
    http, websocket = EchoHttp(), EchoWebSocket()
    ports = {8080: http.port, 3000: http.port, WS_PORT: websocket.port}
    with LoopThread() as loops:
        yield StandInAgent(loops, {TOKEN}, ports)
    http.close()
    websocket.close()


@pytest.fixture
def api(make_api, standins, monkeypatch):
    real = relay.upstream_for

    def via_standin(context, owner, name, port):
        real(context, owner, name, port)  # NotFound, Conflict: as ever
        return Upstream(standins.url, TOKEN, port)

    monkeypatch.setattr(relay, "upstream_for", via_standin)
    api = make_api(apps_domain=APPS, public_url=f"http://{MAIN}")
    alice = api.member("alice")
    for name in ("w", "v"):
        accepted = alice.post("/api/v1/workspaces", json={"name": name, "image": IMAGE}).json()
        api.settle(alice, accepted)
    api.member("bob")
    return api


def call(api, method, path, host=MAIN, cookies=None, **options) -> httpx.Response:
    """One request with exactly these cookies (a new client: no jar carried over)."""
    headers = {"Host": host, **options.pop("headers", {})}
    if cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    with http_client(api.url) as client:
        return client.request(method, path, headers=headers, **options)


def sign_in(api, name: str, password: str | None = None, next_path: str = "/") -> httpx.Response:
    known = ADMIN_PASSWORD if name == "admin" else f"{name}-password-1234"
    form = {"username": name, "password": password or known, "next": next_path}
    return call(api, "POST", "/login", data=form)


def session(api, name: str) -> dict[str, str]:
    answer = sign_in(api, name)
    assert answer.status_code == 303, answer.text
    return {"dev8_session": answer.cookies["dev8_session"]}


def set_cookie_header(answer: httpx.Response, name: str) -> str:
    found = [h for h in answer.headers.get_list("set-cookie") if h.startswith(f"{name}=")]
    assert len(found) == 1, answer.headers
    return found[0]


# Signing in and out ---------------------------------------------------------------------
def test_the_sign_in_page_keeps_next_escaped(api):
    answer = call(api, "GET", "/login", params={"next": '/@alice/w/"><script>x</script>'})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert "<script>" not in answer.text and "&lt;script&gt;" in answer.text
    assert 'name="next" value="/@alice/w/&quot;&gt;' in answer.text
    assert "unsafe-inline" not in answer.headers["content-security-policy"]  # its style: hashed


def test_signing_in_sets_a_host_only_http_only_session_cookie(api):
    answer = sign_in(api, "alice", next_path="/@alice/w/?folder=/workspace")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/@alice/w/?folder=/workspace"
    cookie = set_cookie_header(answer, "dev8_session").lower()
    for flag in ("httponly", "secure", "samesite=lax", "path=/", f"max-age={12 * 3600}"):
        assert flag in cookie
    assert "domain" not in cookie
    secret = answer.cookies["dev8_session"]
    user, token = api.context.accounts.verify_token(secret)
    assert (user.name, token.name) == ("alice", "browser session")
    hours = (token.expires_at - token.created_at).total_seconds() / 3600
    assert hours == pytest.approx(12)


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example"])
def test_signing_in_never_leads_to_another_host(api, target):
    assert sign_in(api, "alice", next_path=target).headers["location"] == "/"


def test_a_failed_sign_in_says_the_same_for_any_user_and_sets_nothing(api):
    wrong = sign_in(api, "alice", "not-the-password", next_path="/@bob/w/")
    nobody = sign_in(api, "nobody", "not-the-password", next_path="/@bob/w/")
    for answer in (wrong, nobody):
        assert answer.status_code == 401
        assert "set-cookie" not in answer.headers
        assert "wrong user name or password" in answer.text
        assert 'name="next" value="/@bob/w/"' in answer.text
    assert wrong.text.replace("alice", "nobody") == nobody.text


def test_failed_sign_ins_are_bounded(api):
    for _ in range(5):  # DEV8_LOGIN_FAILURES_PER_ACCOUNT (tests/security/test_login_backoff.py)
        assert sign_in(api, "alice", "not-the-password").status_code == 401
    answer = sign_in(api, "alice")
    assert answer.status_code == 429 and "set-cookie" not in answer.headers
    assert sign_in(api, "bob").status_code == 303  # another user is not locked out


def test_a_sign_in_posted_by_another_site_is_refused(api):
    form = {"username": "alice", "password": "alice-password-1234"}
    answer = call(api, "POST", "/login", data=form, headers={"Origin": "http://evil.example"})
    assert answer.status_code == 403 and "set-cookie" not in answer.headers
    same = call(api, "POST", "/login", data=form, headers={"Origin": f"http://{MAIN}"})
    assert same.status_code == 303


def test_the_api_does_not_take_the_session_cookie(api):
    cookies = session(api, "alice")
    assert call(api, "GET", "/api/v1/users/me", cookies=cookies).status_code == 401
    bearer = {"Authorization": f"Bearer {cookies['dev8_session']}"}
    assert call(api, "GET", "/api/v1/users/me", headers=bearer).status_code == 200


def test_signing_out_revokes_the_session(api):
    cookies = session(api, "alice")
    assert call(api, "GET", "/@alice/w/", cookies=cookies).status_code == 200
    # A page of another host of the same site (a shared port) cannot sign its visitor out.
    shared_page = {"Origin": f"http://{PORT_HOST}"}
    assert call(api, "POST", "/logout", cookies=cookies, headers=shared_page).status_code == 403
    assert call(api, "GET", "/@alice/w/", cookies=cookies).status_code == 200
    answer = call(api, "POST", "/logout", cookies=cookies, headers={"Origin": f"http://{MAIN}"})
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    assert "max-age=0" in set_cookie_header(answer, "dev8_session").lower()
    assert call(api, "GET", "/@alice/w/", cookies=cookies).status_code == 303
    bearer = {"Authorization": f"Bearer {cookies['dev8_session']}"}
    assert call(api, "GET", "/api/v1/users/me", headers=bearer).status_code == 401


# Path mode ------------------------------------------------------------------------------
def test_path_mode_sends_anonymous_browsers_to_sign_in(api):
    answer = call(api, "GET", "/@alice/w/x/y?z=1")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=" + quote("/@alice/w/x/y?z=1", safe="")
    slash = call(api, "GET", "/@alice/w", params={"folder": "/workspace"})
    assert slash.status_code == 307
    assert slash.headers["location"] == "/@alice/w/?folder=%2Fworkspace"


def test_path_mode_is_the_owners_only(api):
    bob, admin = session(api, "bob"), session(api, "admin")
    for cookies in (bob, admin):
        for path in ("/@alice/w/", "/@alice/nothing/", "/@nobody/w/"):
            answer = call(api, "GET", path, cookies=cookies)
            assert answer.status_code == 404, (path, answer.text)
            assert answer.json()["error"] == "not_found"
    assert call(api, "GET", "/@alice/nothing/", cookies=session(api, "alice")).status_code == 404


def test_path_mode_relays_to_the_ide_without_dev8_credentials(api):
    cookies = {**session(api, "alice"), "editor": "kept"}
    answer = call(
        api,
        "POST",
        "/@alice/w/some%20file/x?a=b",
        cookies=cookies,
        content=b"hello",
        headers={"Authorization": "Bearer something", "Origin": f"http://{MAIN}"},
    )
    assert answer.status_code == 200, answer.text
    seen = answer.json()
    assert (seen["method"], seen["path"], seen["body"]) == ("POST", "/some%20file/x?a=b", "hello")
    headers = seen["headers"]
    assert headers.get("cookie") == "editor=kept"
    assert "authorization" not in headers
    assert headers["host"] == MAIN and headers["x-forwarded-prefix"] == "/@alice/w"
    # The IDE's own traffic is not a change to dev8: never in the audit log.
    audited = api.admin().get("/api/v1/audit", params={"limit": 500}).json()["items"]
    assert audited and not [e for e in audited if e["path"].startswith("/@")]


def test_path_mode_refuses_a_change_another_site_asks_for(api):
    cookies = session(api, "alice")
    evil = {"Origin": f"http://x--bob--80.{APPS}"}
    assert call(api, "POST", "/@alice/w/", cookies=cookies, headers=evil).status_code == 403
    assert call(api, "GET", "/@alice/w/", cookies=cookies, headers=evil).status_code == 200


def ws_status(api, path: str, host: str = MAIN, cookies=None, origin: str | None = None) -> int:
    """The HTTP status a WebSocket upgrade to ``host`` is refused with (101 if it is
    accepted and echoes)."""
    headers = {}
    if cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    server = socket.create_connection(urlsplit(api.url).netloc.split(":"), timeout=10)
    try:
        with connect(
            f"ws://{host}{path}", sock=server, additional_headers=headers, origin=origin
        ) as ws:
            ws.send("ping")
            assert ws.recv(timeout=10) == "ping"
            return 101
    except InvalidStatus as refused:
        return refused.response.status_code


def test_path_mode_websockets_are_let_in_like_requests(api, standins, monkeypatch):
    monkeypatch.setitem(standins.ports, 8080, standins.ports[WS_PORT])  # the IDE: an echo
    alice = session(api, "alice")
    assert ws_status(api, "/@alice/w/socket") == 401
    assert ws_status(api, "/@alice/w/socket", cookies=session(api, "bob")) == 404
    assert ws_status(api, "/@alice/w/socket", cookies=session(api, "admin")) == 404
    assert ws_status(api, "/@alice/w/socket", cookies=alice, origin=f"http://{MAIN}") == 101
    evil = f"http://x--bob--80.{APPS}"
    assert ws_status(api, "/@alice/w/socket", cookies=alice, origin=evil) == 403


# Subdomain mode -------------------------------------------------------------------------
def follow_ticket(api, host: str, cookies: dict[str, str], next_path: str = "/") -> str:
    """The ``/__dev8/auth`` URL the main host sends a signed-in browser to."""
    answer = call(
        api, "GET", "/api/v1/apps/ticket", params={"host": host, "next": next_path}, cookies=cookies
    )
    assert answer.status_code == 303, answer.text
    return answer.headers["location"]


def redeem(api, location: str, host: str | None = None) -> httpx.Response:
    parts = urlsplit(location)
    return call(api, "GET", f"{parts.path}?{parts.query}", host=host or parts.netloc)


def app_cookie(api, host: str, user: str) -> dict[str, str]:
    answer = redeem(api, follow_ticket(api, host, session(api, user)))
    assert answer.status_code == 303, answer.text
    return {"dev8_app": answer.cookies["dev8_app"]}


def test_the_ticket_exchange_end_to_end(api):
    first = call(api, "GET", "/page?q=1", host=IDE)
    assert first.status_code == 303
    ticket_url = urlsplit(first.headers["location"])
    assert (ticket_url.netloc, ticket_url.path) == (MAIN, "/api/v1/apps/ticket")
    assert parse_qs(ticket_url.query) == {"host": [IDE], "next": ["/page?q=1"]}

    to_login = call(api, "GET", f"{ticket_url.path}?{ticket_url.query}")
    assert to_login.status_code == 303
    assert to_login.headers["location"].startswith("/login?next=%2Fapi%2Fv1%2Fapps%2Fticket")

    location = follow_ticket(api, IDE, session(api, "alice"), "/page?q=1")
    assert location.startswith(f"http://{IDE}/__dev8/auth?ticket=")
    redeemed = redeem(api, location)
    assert redeemed.status_code == 303 and redeemed.headers["location"] == "/page?q=1"
    cookie = set_cookie_header(redeemed, "dev8_app").lower()
    for flag in ("httponly", "secure", "samesite=lax", "path=/"):
        assert flag in cookie
    assert "domain" not in cookie
    cookies = {"dev8_app": redeemed.cookies["dev8_app"], "mine": "1"}

    answer = call(api, "GET", "/page?q=1", host=IDE, cookies=cookies)
    assert answer.status_code == 200, answer.text
    seen = answer.json()
    assert seen["path"] == "/page?q=1" and seen["headers"]["host"] == IDE
    assert seen["headers"]["cookie"] == "mine=1"
    assert redeem(api, location).status_code == 401  # a ticket is good once


def test_a_ticket_and_a_cookie_are_good_for_their_own_host_only(api):
    other_host = f"v--alice.{APPS}"
    location = follow_ticket(api, IDE, session(api, "alice"))
    assert redeem(api, location, host=other_host).status_code == 401
    assert redeem(api, location).status_code == 401  # tried once: gone
    cookies = app_cookie(api, IDE, "alice")
    assert call(api, "GET", "/", host=IDE, cookies=cookies).status_code == 200
    assert call(api, "GET", "/", host=other_host, cookies=cookies).status_code == 303


def test_app_hosts_of_ides_are_the_owners_only(api):
    bob = app_cookie(api, IDE, "bob")
    assert call(api, "GET", "/", host=IDE, cookies=bob).status_code == 404
    assert call(api, "GET", "/", host=f"x--nobody.{APPS}", cookies=bob).status_code == 303
    assert ws_status(api, "/socket", host=IDE, cookies=bob) == 404
    assert ws_status(api, "/socket", host=IDE) == 401


def test_signing_out_ends_the_app_cookies_too(api):
    alice = session(api, "alice")
    cookies = {"dev8_app": redeem(api, follow_ticket(api, IDE, alice)).cookies["dev8_app"]}
    assert call(api, "GET", "/", host=IDE, cookies=cookies).status_code == 200
    assert call(api, "POST", "/logout", cookies=alice).status_code == 303
    assert call(api, "GET", "/", host=IDE, cookies=cookies).status_code == 303


# Port sharing ---------------------------------------------------------------------------
def share(api, level: str | None, port: int = 3000) -> httpx.Response:
    alice = api.login("alice", "alice-password-1234")
    if level is None:
        return alice.delete(f"/api/v1/workspaces/w/ports/{port}")
    return alice.put(f"/api/v1/workspaces/w/ports/{port}", json={"sharing": level})


def test_port_sharing_levels(api):
    bob, alice = app_cookie(api, PORT_HOST, "bob"), app_cookie(api, PORT_HOST, "alice")
    assert call(api, "GET", "/", host=PORT_HOST).status_code == 303  # private: sign in
    assert call(api, "GET", "/", host=PORT_HOST, cookies=bob).status_code == 404
    assert call(api, "GET", "/", host=PORT_HOST, cookies=alice).status_code == 200

    assert share(api, "authenticated").json()["url"] == f"http://{PORT_HOST}/"
    assert call(api, "GET", "/", host=PORT_HOST).status_code == 303
    assert call(api, "GET", "/", host=PORT_HOST, cookies=bob).status_code == 200

    assert share(api, "public").status_code == 200
    answer = call(api, "GET", "/x", host=PORT_HOST, cookies={**bob, "dev8_session": "s", "a": "b"})
    assert answer.status_code == 200
    assert answer.json()["headers"]["cookie"] == "a=b"  # no dev8 cookie reaches the app
    assert call(api, "GET", "/", host=PORT_HOST).status_code == 200
    listed = api.login("alice", "alice-password-1234").get("/api/v1/workspaces/w/ports").json()
    assert [(p["port"], p["sharing"]) for p in listed] == [(3000, "public")]

    assert share(api, None).status_code == 204
    assert call(api, "GET", "/", host=PORT_HOST).status_code == 303
    assert call(api, "GET", "/", host=PORT_HOST, cookies=bob).status_code == 404
    assert (
        api.login("bob", "bob-password-1234")
        .get("/api/v1/workspaces/w/ports", params={"owner": "alice"})
        .status_code
        == 404
    )


def test_port_sharing_is_capped(make_api, standins):
    api = make_api(max_port_sharing="authenticated")
    alice = api.member("alice")
    api.settle(alice, alice.post("/api/v1/workspaces", json={"name": "w", "image": IMAGE}).json())
    refused = alice.put("/api/v1/workspaces/w/ports/3000", json={"sharing": "public"})
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    accepted = alice.put("/api/v1/workspaces/w/ports/3000", json={"sharing": "authenticated"})
    assert accepted.status_code == 200 and accepted.json()["url"] is None  # no apps domain
