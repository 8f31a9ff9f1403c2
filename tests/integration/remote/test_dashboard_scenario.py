"""The dashboard as a team uses it, in a real browser (Debian's Chromium, headless, driven by
Playwright) against a real `dev8 server` on the real engine, in one scenario on one server:

the admin signs in; creates a workspace with the form and watches its history until it runs
(progress lines of its operations, then the state "running"); opens the IDE from the button
(VS Code's workbench, through the server in path mode); stops and starts it; adds an SSH key
and makes an API token on the account page (the token then works on the API); adds a member
on the admin page. The member signs in in a browser of their own, sees none of the admin's
workspaces and creates one of theirs; the admin's audit log shows what both did.

It lives here, beside the other tests of the server on the engine, for ``remote_server``: a
real `dev8 server --dev` whose admin is named after a unique owner label, stopped at the end
before everything of that owner is removed from the engine (containers, volumes, networks).
No laptop namespace: the browser runs on this host and reaches the server on 127.0.0.1.

With ``DEV8_SCREENSHOTS=DIR`` it saves PNGs of the main pages in DIR on its way (the ones in
docs/images: ``DEV8_SCREENSHOTS=docs/images .venv/bin/pytest`` this file).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import docker
import httpx
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Locator,
    Page,
    Response,
    ViewportSize,
    expect,
    sync_playwright,
)

from tests.integration.owned import OWNER
from tests.integration.remote.browser_session import FLAGS, wait_for_workbench
from tests.integration.remote.laptop import (
    ADMIN_PASSWORD,
    RemoteServer,
    remote_server,
    remove_owner_objects,
    unique_owner,
)

WORKSPACE = "web"
MEMBERS_WORKSPACE = "notes"
DESKTOP = ViewportSize(width=1280, height=800)
PHONE = ViewportSize(width=360, height=800)
# A real workspace takes 10-30 s to create and start here, more on a loaded machine.
LIFECYCLE_MS = 240_000
PAGE_MS = 15_000
# What the create and start operations report while they run (service.workspaces).
PROGRESS = re.compile(
    "creating volumes and container|starting the container|waiting for the workspace"
)
SCREENSHOTS = "DEV8_SCREENSHOTS"


@dataclass
class Problems:
    """Script errors, CSP violations and failed responses of the dashboard's pages. The IDE's
    own traffic (``/@OWNER/NAME/...``: code-server's pages) is not the dashboard's."""

    found: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> Page:
        page.on("console", lambda message: self._console(page, message))
        page.on("pageerror", lambda error: self._add(page.url, f"script error: {error}"))
        page.on("response", self._response)
        return page

    def _console(self, page: Page, message: ConsoleMessage) -> None:
        if message.type == "error":
            where = message.location.get("url") or page.url
            self._add(where, f"{message.text} ({where})")

    def _response(self, answer: Response) -> None:
        if answer.status >= 400:
            self._add(answer.url, f"{answer.status} {answer.url}")

    def _add(self, url: str, problem: str) -> None:
        if not urlsplit(url).path.startswith("/@"):
            self.found.append(problem)


def screenshot(
    page: Page, name: str, viewport: ViewportSize = DESKTOP, full_page: bool = False
) -> None:
    """``name``.png of the page as it is, at ``viewport`` (the whole page with
    ``full_page``), when DEV8_SCREENSHOTS names a directory."""
    directory = os.environ.get(SCREENSHOTS)
    if not directory:
        return
    Path(directory).mkdir(parents=True, exist_ok=True)
    page.set_viewport_size(viewport)
    path = Path(directory) / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page, animations="disabled")
    page.set_viewport_size(DESKTOP)


@pytest.fixture
def browser(chromium: str) -> Iterator[Browser]:
    expect.set_options(timeout=PAGE_MS)  # pages of a server that is starting workspaces
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=FLAGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()
            expect.set_options(timeout=5_000)  # Playwright's default, for other tests


@dataclass(frozen=True)
class Team:
    server: RemoteServer  # its admin is named after a unique owner label
    member: str  # the member the admin adds: the owner label of their workspaces


@pytest.fixture
def team(tmp_path: Path, client: docker.DockerClient, workspace_image: str) -> Iterator[Team]:
    admin = unique_owner(OWNER)
    member = f"{admin}-member"
    try:
        with remote_server(tmp_path / "server", "127.0.0.1", admin, client) as server:
            yield Team(server, member)
    finally:  # once the server has stopped, which removed its admin's objects only
        remove_owner_objects(client, member)


def sign_in(page: Page, url: str, name: str, password: str) -> None:
    page.goto(f"{url}/")
    expect(page).to_have_url(f"{url}/login?next=%2Fworkspaces")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your workspaces")


def card(page: Page, name: str) -> Locator:
    """A workspace's card on the list."""
    heading = page.get_by_role("heading", name=name, exact=True)
    return page.get_by_role("listitem").filter(has=heading)


def create_with_form(page: Page, name: str, shot: str = "") -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name="New workspace").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("New workspace")
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("small").check()
    page.get_by_label("Stop when idle for (minutes)").fill("0")  # never while the test runs
    if shot:
        screenshot(page, shot)
    page.get_by_role("button", name="Create workspace").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(name)  # the workspace's page


def watch_until_running(page: Page, name: str) -> None:
    """On the workspace's page, where creating it led: its operations' progress in the
    history while they run, then both done and the workspace running."""
    history = page.get_by_role("region", name="History")
    expect(history.get_by_text(PROGRESS).first).to_be_visible(timeout=LIFECYCLE_MS)
    screenshot(page, "detail-starting")
    for action in ("create", "start"):
        done = history.get_by_role("row").filter(
            has=page.get_by_role("cell", name=action, exact=True)
        )
        expect(done).to_contain_text("succeeded", timeout=LIFECYCLE_MS)
    page.reload()  # the state at the top is the page's; the history is what updates live
    expect(page.get_by_text("running", exact=True).first).to_be_visible()
    status = page.get_by_role("region", name="Status")
    expect(status.get_by_role("cell", name="code-server", exact=True)).to_be_visible()


def open_ide(page: Page, url: str, owner: str, name: str) -> None:
    card(page, name).get_by_role("link", name=f"Open IDE of {name}").click()
    expect(page).to_have_url(re.compile(re.escape(f"{url}/@{owner}/{name}/")))
    wait_for_workbench(page)


def stop_and_start(page: Page, name: str) -> None:
    notice = page.get_by_role("status")
    card(page, name).get_by_role("button", name=f"Stop {name}", exact=True).click()
    expect(notice).to_have_text(f"{name}: stopping.")
    badge = card(page, name).get_by_text(re.compile("^(running|stopped)$"))
    expect(badge).to_have_text("stopped", timeout=LIFECYCLE_MS)
    card(page, name).get_by_role("button", name=f"Start {name}", exact=True).click()
    expect(notice).to_have_text(f"{name}: starting.")
    expect(badge).to_have_text("running", timeout=LIFECYCLE_MS)


def add_ssh_key_and_token(page: Page, public_key: str) -> str:
    """The SSH key saved and a token made on the account page; the token, shown once."""
    page.get_by_role("link", name="Account").click()
    keys = page.get_by_label("Public keys, one a line")
    keys.fill(public_key)
    page.get_by_role("button", name="Save SSH keys").click()
    expect(page.get_by_role("status")).to_have_text(
        "SSH keys saved; your running workspaces have them now."
    )
    expect(keys).to_have_value(re.compile(rf"^{re.escape(public_key)}\s*$"))
    page.get_by_label("Name", exact=True).fill("laptop")
    page.get_by_role("button", name="Create a token").click()
    shown = page.get_by_label("Copy it now: it is not shown again")
    expect(shown).to_have_value(re.compile(r"^\S{20,}$"))
    return shown.input_value()


def add_member(page: Page, name: str) -> str:
    """A member added on the admin page with a generated password, which it shows once."""
    page.get_by_role("link", name="Admin").click()
    page.get_by_label("User name", exact=True).fill(name)
    page.get_by_label("Role", exact=True).select_option("member")
    page.get_by_role("button", name="Add user").click()
    expect(page.get_by_role("status")).to_contain_text(f"User {name} added.")
    users = page.get_by_role("region", name="Users")
    expect(users.get_by_role("cell", name=name, exact=True)).to_be_visible()
    password = page.get_by_label("Give it to them now: it is not shown again")
    expect(password).to_have_value(re.compile(r"^\S{10,}$"))
    return password.input_value()


def audit_rows(page: Page, actor: str, request: str) -> Locator:
    log = page.get_by_role("region", name="Audit log")
    return (
        log.get_by_role("row")
        .filter(has=page.get_by_role("cell", name=actor, exact=True))
        .filter(has_text=request)
    )


def check_the_token(url: str, token: str, owner: str, public_key: str) -> None:
    """What the account page made works on the API."""
    me = httpx.get(f"{url}/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200, me.text
    assert me.json()["name"] == owner
    assert public_key in me.json()["ssh_keys"]


@pytest.mark.timeout(1200)
def test_a_team_uses_the_dashboard(team: Team, browser: Browser, ssh_key: Path) -> None:
    url, admin, member = team.server.url, team.server.owner, team.member
    problems = Problems()
    admins: BrowserContext = browser.new_context(viewport=DESKTOP)
    admins.set_default_timeout(PAGE_MS)
    page = problems.watch(admins.new_page())

    page.goto(f"{url}/")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    screenshot(page, "sign-in")
    sign_in(page, url, admin, ADMIN_PASSWORD)
    expect(page.get_by_role("heading", name="No workspaces yet")).to_be_visible()

    create_with_form(page, WORKSPACE, shot="create")
    watch_until_running(page, WORKSPACE)
    screenshot(page, "detail", full_page=True)

    page.get_by_role("link", name="All workspaces").click()
    open_ide(page, url, admin, WORKSPACE)
    page.goto(f"{url}/workspaces")
    stop_and_start(page, WORKSPACE)
    screenshot(page, "workspaces")
    screenshot(page, "workspaces-360", PHONE)

    public_key = ssh_key.with_suffix(".pub").read_text().strip()
    token = add_ssh_key_and_token(page, public_key)
    check_the_token(url, token, admin, public_key)
    page.get_by_role("link", name="Account").click()  # again: the token is not shown now
    expect(page.get_by_role("cell", name="laptop", exact=True)).to_be_visible()
    assert token not in page.content()
    screenshot(page, "account")

    password = add_member(page, member)
    members = browser.new_context(viewport=DESKTOP)  # a browser of their own: no shared cookie
    members.set_default_timeout(PAGE_MS)
    their_page = problems.watch(members.new_page())
    sign_in(their_page, url, member, password)
    expect(their_page.get_by_role("heading", name="No workspaces yet")).to_be_visible()
    create_with_form(their_page, MEMBERS_WORKSPACE)
    their_page.get_by_role("link", name="All workspaces").click()
    expect(their_page.get_by_role("heading", level=2)).to_have_text([MEMBERS_WORKSPACE])

    page.get_by_role("link", name="Admin").click()
    expect(audit_rows(page, admin, "POST /workspaces/new").first).to_be_visible()
    expect(audit_rows(page, admin, "POST /admin/users").first).to_be_visible()
    expect(audit_rows(page, member, "POST /workspaces/new").first).to_be_visible()
    screenshot(page, "admin", full_page=True)
    members.close()
    admins.close()
    assert problems.found == []
