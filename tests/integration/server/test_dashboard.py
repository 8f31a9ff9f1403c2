"""The dashboard's workspaces pages against the real app under uvicorn: who sees what,
CSRF on every cookie-authenticated change, the Content-Security-Policy, the create form and
the live states.

Stand-ins (no engine): the provider and agent client are the fakes of ``tests.fakes``
(``alice`` and ``bob`` are conftest's); a page reads and changes workspaces through the same
service as the API, whatever the provider.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

import httpx
import pytest

from dev8.server.web.dashboard.render import HTMX
from dev8.server.web.dashboard.workspaces import PAGE_SIZE
from tests.integration.server.live import IMAGE, Api, wait_for
from tests.integration.server.signed_in import HTML, Browser, sign_in
from tests.integration.server.test_api import add_record

HTMX_REQUEST = {"HX-Request": "true"}


def workspace(api: Api, owner: str, name: str) -> dict | None:
    answer = api.admin().get(f"/api/v1/workspaces/{name}", params={"owner": owner})
    return answer.json() if answer.status_code == 200 else None


# What a page is made of -------------------------------------------------------------------
@dataclass
class Page(HTMLParser):
    """The parts of a page these tests check: elements by tag with their attributes, the
    text of scripts and styles, and label targets."""

    elements: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    inline: list[str] = field(default_factory=list)  # text inside <script> or <style>
    _in: str = ""

    def __post_init__(self) -> None:
        HTMLParser.__init__(self)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {key: value or "" for key, value in attrs}))
        self._in = tag if tag in ("script", "style") else ""

    def handle_endtag(self, tag: str) -> None:
        self._in = ""

    def handle_data(self, data: str) -> None:
        if self._in and data.strip():
            self.inline.append(data)

    def all(self, tag: str) -> list[dict[str, str]]:
        return [attrs for name, attrs in self.elements if name == tag]


def parse(text: str) -> Page:
    page = Page()
    page.feed(text)
    return page


def assert_safe_page(answer: httpx.Response) -> Page:
    """No inline script or style, no event handler attribute, scripts from this host only;
    the policy that enforces it, and no framing."""
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    page = parse(answer.text)
    assert page.inline == []
    assert all(script.get("src", "").startswith("/static/") for script in page.all("script"))
    for tag, attrs in page.elements:
        assert not [key for key in attrs if key.startswith("on") or key == "style"], (tag, attrs)
    return page


def assert_labelled(page: Page) -> None:
    """One h1; every visible input and select has a label naming it."""
    assert len(page.all("h1")) == 1
    labelled = {attrs["for"] for attrs in page.all("label")}
    fields = [a for a in page.all("input") + page.all("select") if a.get("type") != "hidden"]
    assert fields and all(attrs.get("id") in labelled for attrs in fields), fields


# Pages ------------------------------------------------------------------------------------
def test_the_list_shows_the_owners_workspace_with_its_ide_ssh_and_buttons(api, alice):
    page = alice.get("/workspaces")
    parsed = assert_safe_page(page)
    assert_labelled(parsed)
    assert "Signed in as <strong>alice</strong>" in page.text
    ide = f"{api.url}/@alice/w/"  # path mode, at the address the browser used
    assert any(a.get("href") == ide for a in parsed.all("a"))
    ssh = [a for a in parsed.all("input") if a.get("id") == "ssh-w"]
    assert ssh[0]["value"] == "ssh dev8.w" and "readonly" in ssh[0]
    buttons = {b.get("formaction"): b for b in parsed.all("button")}
    for action in ("stop", "restart", "rebuild", "delete"):  # it runs: no Start
        assert buttons[f"/workspaces/w/{action}"]["hx-post"] == f"/workspaces/w/{action}"
    assert "/workspaces/w/start" not in buttons
    assert "volumes are kept" in buttons["/workspaces/w/delete"]["hx-confirm"]
    logout = next(f for f in parsed.all("form") if f["action"] == "/logout")
    assert logout["method"] == "post"
    hidden = [i for i in parsed.all("input") if i.get("name") == "csrf_token"]
    assert hidden and all(i["value"] == alice.csrf for i in hidden)
    assert f'"X-CSRF-Token": "{alice.csrf}"' in parsed.all("body")[0]["hx-headers"]


def test_a_stopped_workspace_offers_start_not_stop(api, alice):
    member = api.login("alice", "alice-password-1234")
    api.settle(member, member.post("/api/v1/workspaces/w/stop").json())
    parsed = assert_safe_page(alice.get("/workspaces"))
    offered = {b.get("formaction") for b in parsed.all("button")}
    assert {"/workspaces/w/start", "/workspaces/w/rebuild", "/workspaces/w/delete"} <= offered
    assert not {"/workspaces/w/stop", "/workspaces/w/restart"} & offered


def test_an_empty_list_says_what_to_do_next(api, bob):
    page = bob.get("/workspaces")
    assert_safe_page(page)
    assert "No workspaces yet" in page.text and 'href="/workspaces/new"' in page.text


def test_the_create_form_is_labelled_and_offers_the_admins_images(make_api):
    api = make_api(images=f"{IMAGE}, dev8/workspace:latest ,{IMAGE}")
    api.member("carol")
    page = sign_in(api, "carol", "carol-password-1234").get("/workspaces/new")
    parsed = assert_safe_page(page)
    assert_labelled(parsed)
    options = [o["value"] for o in parsed.all("option")]
    assert options == [IMAGE, "dev8/workspace:latest"]
    sizes = [i["value"] for i in parsed.all("input") if i.get("name") == "size"]
    assert sizes == ["micro", "small", "medium", "large"]


def test_root_leads_to_the_workspaces(api, alice):
    answer = alice.get("/")
    assert (answer.status_code, answer.headers["location"]) == (303, "/workspaces")


def test_every_page_has_the_same_security_headers_and_the_sign_in_style_is_allowed(api, alice):
    dashboard, sign_in_page = alice.get("/workspaces"), alice.get("/login")
    headers = ("content-security-policy", "x-frame-options", "x-content-type-options")
    headers += ("referrer-policy", "cache-control")
    assert [dashboard.headers[h] for h in headers] == [sign_in_page.headers[h] for h in headers]
    assert_safe_page(dashboard)
    style = re.search(r"<style>(.*?)</style>", sign_in_page.text, re.S)[1]
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    policy = sign_in_page.headers["content-security-policy"]
    assert f"style-src 'self' 'sha256-{digest}';" in policy and "unsafe-inline" not in policy


# Who may see and change what ----------------------------------------------------------------
def test_anonymous_is_sent_to_sign_in_and_changes_are_refused(api, alice):
    with httpx.Client(base_url=api.url) as client:
        page = client.get("/workspaces/new")
        assert (page.status_code, page.headers["location"]) == (
            303,
            "/login?next=%2Fworkspaces%2Fnew",
        )
        change = client.post("/workspaces/w/stop")
        assert change.status_code == 401 and change.json()["error"] == "unauthorized"
        live = client.get(
            "/workspaces/live",
            headers={**HTMX_REQUEST, "HX-Current-URL": f"{api.url}/workspaces?owner=x"},
        )
    assert live.status_code == 401
    assert live.headers["hx-redirect"] == "/login?next=%2Fworkspaces%3Fowner%3Dx"
    assert workspace(api, "alice", "w")["desired_state"] == "running"


def test_another_members_workspace_does_not_exist_for_them(api, alice, bob):
    assert bob.get("/workspaces", params={"owner": "alice"}).status_code == 404
    assert bob.get("/workspaces/w/purge").status_code == 404
    stop = bob.post("/workspaces/w/stop", headers=HTML)
    assert stop.status_code == 404 and "no workspace named" in stop.text
    assert_safe_page(stop)  # the error page too
    for action in ("stop", "delete"):
        assert bob.post(f"/workspaces/w/{action}", params={"owner": "alice"}).status_code == 404
    assert workspace(api, "alice", "w")["desired_state"] == "running"


def test_an_admin_sees_and_changes_a_members_workspaces_by_naming_the_owner(api, alice):
    admin = sign_in(api, "admin", "admin-password-for-tests")
    assert "No workspaces yet" in admin.get("/workspaces").text  # their own: none
    page = admin.get("/workspaces", params={"owner": "alice"})
    assert "Workspaces of alice" in page.text
    assert 'formaction="/workspaces/w/stop?owner=alice"' in page.text
    answer = admin.post("/workspaces/w/stop", params={"owner": "alice"})
    assert (answer.status_code, answer.headers["location"]) == (303, "/workspaces?owner=alice")
    assert workspace(api, "alice", "w")["desired_state"] == "stopped"


# CSRF ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("token", ["", "wrong", "other-session"])
def test_a_change_without_the_sessions_csrf_token_is_refused(api, alice, token):
    if token == "other-session":
        token = sign_in(api, "alice", "alice-password-1234").csrf  # alice, another session
    answer = alice.post("/workspaces/w/stop", token=token)
    assert answer.status_code == 403 and answer.json()["error"] == "forbidden"
    form = alice.request("POST", "/workspaces/w/stop", data={"csrf_token": token}, headers=HTML)
    assert form.status_code == 403 and "reload the page" in form.text
    assert workspace(api, "alice", "w")["desired_state"] == "running"


def test_the_right_csrf_token_lets_a_change_through_header_or_form(api, alice):
    by_header = alice.post("/workspaces/w/stop", headers=HTMX_REQUEST)
    assert by_header.status_code == 200 and "w: stopping." in by_header.text
    assert 'id="ws-w" hx-swap-oob="true"' in by_header.text  # the card, with its new buttons
    assert "/workspaces/w/start" in by_header.text and "/workspaces/w/stop" not in by_header.text
    assert workspace(api, "alice", "w")["desired_state"] == "stopped"
    by_form = alice.request("POST", "/workspaces/w/start", data={"csrf_token": alice.csrf})
    assert (by_form.status_code, by_form.headers["location"]) == (303, "/workspaces")
    assert workspace(api, "alice", "w")["desired_state"] == "running"


def test_a_change_another_site_asks_for_is_refused_even_with_the_token(api, alice):
    answer = alice.post("/workspaces/w/stop", headers={"Origin": "http://evil.example"})
    assert answer.status_code == 403
    assert workspace(api, "alice", "w")["desired_state"] == "running"


def test_the_bearer_api_needs_no_csrf_token_and_never_takes_the_cookie(api, alice):
    bearer = api.login("alice", "alice-password-1234")
    assert bearer.post("/api/v1/workspaces/w/stop").status_code == 202
    cookie_only = alice.request("POST", "/api/v1/workspaces/w/start")
    assert cookie_only.status_code == 401
    assert workspace(api, "alice", "w")["desired_state"] == "stopped"


def test_signing_out_ends_the_pages_session(api, alice):
    assert alice.request("POST", "/logout", data={"csrf_token": alice.csrf}).status_code == 303
    assert alice.get("/workspaces").status_code == 303
    assert alice.post("/workspaces/w/stop").status_code == 401


# Static files -------------------------------------------------------------------------------
def test_htmx_and_the_stylesheet_are_served_by_the_app_and_cached(api, alice):
    page = parse(alice.get("/workspaces").text)
    script = page.all("script")[0]["src"]
    sheet = next(a["href"] for a in page.all("link") if a.get("rel") == "stylesheet")
    assert script.startswith(f"/static/{HTMX}?v=") and sheet.startswith("/static/dashboard.css?v=")
    with httpx.Client(base_url=api.url) as client:
        js, css = client.get(script), client.get(sheet)
    assert js.status_code == css.status_code == 200
    assert js.headers["content-type"].startswith("text/javascript")
    assert css.headers["content-type"].startswith("text/css")
    for answer in (js, css):
        assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert js.text.startswith("/*! htmx 2.0.11") and "Zero-Clause BSD" in js.text[:300]
    assert "var htmx=" in js.text and ":focus-visible" in css.text


# The create form ----------------------------------------------------------------------------
def test_the_create_form_creates_and_never_shows_a_secret_back(api, bob):
    form = {
        "csrf_token": bob.csrf,
        "name": "proj",
        "size": "medium",
        "idle_minutes": "10",
        "dotfiles": "https://git.example/me/dotfiles.git",
        "secret_name": ["API_KEY", ""],
        "secret_value": ["s3cret-value-xyz", ""],
    }
    answer = bob.request("POST", "/workspaces/new", data=form, headers=HTML)
    assert (answer.status_code, answer.headers["location"]) == (303, "/workspaces/proj/detail")
    made = workspace(api, "bob", "proj")
    assert (made["cpus"], made["memory_mb"], made["idle_timeout_s"]) == (4, 8192, 600)
    assert made["secret_names"] == ["API_KEY"] and made["image"] == "dev8/workspace:latest"
    assert made["dotfiles_repo"] == "https://git.example/me/dotfiles.git"
    page = bob.get("/workspaces")
    assert 'id="state-proj"' in page.text and "s3cret-value-xyz" not in page.text


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "Bad Name"}, "invalid workspace name &#39;Bad Name&#39;"),
        ({"name": "ok", "image": "evil/image:1"}, "is not offered here"),
        ({"name": "ok", "size": "huge"}, "unknown size &#39;huge&#39;"),
        ({"name": "ok", "idle_minutes": "soon"}, "not a whole number of minutes"),
        ({"name": "ok", "secret_name": "", "secret_value": "x"}, "has a value but no name"),
        ({"name": "w"}, "already"),
        ({"name": "ok", "dotfiles": "ftp://x/y"}, "invalid dotfiles repository"),
    ],
)
def test_a_bad_create_form_shows_one_line_and_creates_nothing(api, alice, fields, message):
    form = {"csrf_token": alice.csrf, "secret_name": "TOKEN", "secret_value": "hidden-xyz"}
    answer = alice.request("POST", "/workspaces/new", data=form | fields, headers=HTML)
    assert 400 <= answer.status_code < 500
    errors = re.findall(r'<p class="error" role="alert" id="form-error">([^<]*)</p>', answer.text)
    assert len(errors) == 1 and message in errors[0], answer.text
    assert "hidden-xyz" not in answer.text  # a secret's value is never shown back
    assert_safe_page(answer)
    names = [
        w["name"]
        for w in api.login("alice", "alice-password-1234").get("/api/v1/workspaces").json()["items"]
    ]
    assert names == ["w"]


def test_more_secret_rows_come_with_labels(api, alice):
    answer = alice.get("/workspaces/new/secret-row", params={"index": 3}, headers=HTMX_REQUEST)
    page = parse(answer.text)
    assert {i["id"] for i in page.all("input")} == {"secret-name-3", "secret-value-3"}
    assert {label["for"] for label in page.all("label")} == {"secret-name-3", "secret-value-3"}
    assert 'hx-get="/workspaces/new/secret-row?index=4"' in answer.text


# Pages of a long list -----------------------------------------------------------------------
def test_a_long_list_comes_a_page_at_a_time_and_narrows_by_name(api: Api, alice: Browser):
    for number in range(30):  # after w's 1 and these 30, there are 31 in 2 pages of 25
        add_record(api, f"p-{number:02d}", "alice", running=False)
    first = alice.get("/workspaces")
    assert_labelled(parse(first.text))
    assert cards(first.text)[0] == "p-00" and len(cards(first.text)) == PAGE_SIZE
    assert 'hx-get="/workspaces/live"' in first.text and "First page" not in first.text
    after = re.search(r'href="/workspaces\?after=([^"]+)" rel="next"', first.text)[1]
    second = alice.get("/workspaces", params={"after": after})
    assert cards(second.text) == [*(f"p-{n}" for n in range(25, 30)), "w"]
    assert f'hx-get="/workspaces/live?after={after}"' in second.text
    assert 'rel="next"' not in second.text and 'href="/workspaces">First page' in second.text
    live = alice.get("/workspaces/live", params={"after": after, "shown": shown(second.text)})
    assert live.status_code == 204  # the same page, unchanged

    narrowed = alice.get("/workspaces", params={"name_prefix": "p-1"})
    assert cards(narrowed.text) == [f"p-1{n}" for n in range(10)]
    assert 'value="p-1"' in narrowed.text and 'rel="next"' not in narrowed.text
    none = alice.get("/workspaces", params={"name_prefix": "zz"})
    assert "No names start with <code>zz</code>" in none.text and cards(none.text) == []


def test_an_admin_pages_through_a_members_list_keeping_the_owner(api: Api, alice: Browser):
    for number in range(30):
        add_record(api, f"p-{number:02d}", "alice", running=False)
    admin = sign_in(api, "admin", "admin-password-for-tests")
    page = admin.get("/workspaces", params={"owner": "alice", "name_prefix": "p-"})
    assert 'href="/workspaces?owner=alice&amp;after=p-24&amp;name_prefix=p-" rel="next"' in (
        page.text
    )
    assert '<input type="hidden" name="owner" value="alice">' in page.text  # the filter's
    later = admin.get("/workspaces", params={"owner": "alice", "after": "p-24"})
    assert cards(later.text) == [*(f"p-{n}" for n in range(25, 30)), "w"]
    assert 'formaction="/workspaces/w/stop?owner=alice"' in later.text


def cards(page_text: str) -> list[str]:
    return re.findall(r'<li class="card" id="ws-([^"]+)">', page_text)


# Live states --------------------------------------------------------------------------------
def shown(page_text: str) -> list[str]:
    return re.findall(r'name="shown" value="([^"]+)"', page_text)


def test_the_live_fragment_sends_only_what_changed(api, alice):
    current = shown(alice.get("/workspaces").text)
    assert alice.get("/workspaces/live", params={"shown": current}).status_code == 204
    alice.post("/workspaces/w/stop", headers=HTMX_REQUEST)
    changed = wait_for(
        lambda: (
            (a := alice.get("/workspaces/live", params={"shown": current})).status_code == 200 and a
        ),
        message="a changed state",
    )
    assert 'id="ws-w" hx-swap-oob="true"' in changed.text
    assert '<section id="workspaces"' not in changed.text
    bearer = api.login("alice", "alice-password-1234")
    assert bearer.post("/api/v1/workspaces", json={"name": "v", "image": IMAGE}).status_code == 202
    whole = alice.get("/workspaces/live", params={"shown": shown(changed.text)})
    assert '<section id="workspaces" aria-label="Workspaces" hx-swap-oob="true">' in whole.text
    assert 'id="ws-v"' in whole.text and 'id="ws-w"' in whole.text


def test_the_list_follows_a_stop_to_its_end(api, alice):
    alice.post("/workspaces/w/stop", headers=HTMX_REQUEST)
    wait_for(
        lambda: '<span class="badge badge-stopped">stopped</span>' in alice.get("/workspaces").text,
        message="w shown stopped",
    )


# Delete and purge ---------------------------------------------------------------------------
def test_purge_names_the_volumes_and_needs_the_name_typed(api, alice):
    page = alice.get("/workspaces/w/purge")
    assert_safe_page(page)
    volumes = re.findall(r"<code>(dev8-[^<]+)</code>", page.text)
    assert len(volumes) == 3
    form = parse(page.text).all("form")[-1]
    assert all(volume in form["hx-confirm"] for volume in volumes)
    wrong = alice.post("/workspaces/w/purge", data={"confirm": "x"}, headers=HTMX_REQUEST)
    assert wrong.status_code == 422 and "type the workspace&#39;s name" in wrong.text
    assert workspace(api, "alice", "w")["desired_state"] == "running"
    right = alice.post("/workspaces/w/purge", data={"confirm": "w"}, headers=HTMX_REQUEST)
    assert (right.status_code, right.headers["hx-redirect"]) == (204, "/workspaces")
    wait_for(lambda: workspace(api, "alice", "w") is None, message="w purged")


def test_delete_keeps_the_volumes_and_the_list_offers_to_purge(api, alice):
    answer = alice.post("/workspaces/w/delete", headers=HTMX_REQUEST)
    assert answer.status_code == 200 and "w: removing." in answer.text
    page = wait_for(
        lambda: "Removed; its volumes are kept" in (text := alice.get("/workspaces").text) and text,
        message="w shown removed",
    )
    assert 'href="/workspaces/w/purge"' in page and "/workspaces/w/stop" not in page
