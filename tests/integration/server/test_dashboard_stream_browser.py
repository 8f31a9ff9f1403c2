"""The detail page's live progress in a real browser (Debian's Chromium, headless, driven by
Playwright): the lines of a running operation appear as the server records them, its end
shows in the history, and nothing breaks the Content-Security-Policy or fails to load.

Stand-ins (no engine): the provider and agent are the fakes of ``tests.fakes``, and the
operation followed is one the test records itself, as the runner would (``driven``), so
that each line appears when the test says so.
"""

from __future__ import annotations

from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from dev8.core.workspace import PENDING
from tests.integration.server.live import Api, create, wait_for
from tests.integration.server.test_dashboard_detail import driven

SHOWN_MS = 10_000  # the stream reads the store every 0.5 s


def watched(page: Page) -> list[str]:
    """What goes wrong on ``page`` from now on: script errors, CSP violations (reported on
    the console), answers of 400 and more."""
    problems: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(f"{message.text} ({message.location['url']})")

    page.on("console", console)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("response", lambda r: r.status >= 400 and problems.append(f"{r.status} {r.url}"))
    return problems


def test_the_detail_page_shows_each_line_as_it_comes_and_the_end(make_api, browser: Browser):
    api: Api = make_api()
    alice = api.member("alice")
    api.settle(alice, create(alice, "w"))
    page = browser.new_page(viewport={"width": 360, "height": 800})
    problems = watched(page)
    page.goto(f"{api.url}/login")
    page.get_by_label("User name").fill("alice")
    page.get_by_label("Password").fill("alice-password-1234")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your workspaces")

    with driven(api) as operation:
        operation.say("staging the home volume")
        page.goto(f"{api.url}/workspaces/w/detail")
        history = page.get_by_role("region", name="History")
        lines = history.get_by_role("list", name="Progress of backup")
        expect(lines).to_contain_text("staging the home volume")
        expect(history.locator("#progress-state")).to_have_text("running")
        operation.say("home: 12 MiB written")
        expect(lines.get_by_role("listitem")).to_have_count(2, timeout=SHOWN_MS)
        expect(lines.get_by_role("listitem").last).to_contain_text("home: 12 MiB written")
        operation.finish("succeeded", "backup 1 kept")
        row = history.locator(f"#op-{operation.id}")
        expect(row).to_contain_text("succeeded backup 1 kept", timeout=SHOWN_MS)
    expect(history).to_contain_text("Latest: backup")
    expect(lines).to_contain_text("home: 12 MiB written")  # the lines stay, as text
    slots = api.live.app.state.progress_streams
    wait_for(lambda: slots.open_for("alice") == 0, message="the stream's end")
    assert problems == [], problems


def test_a_page_drawn_while_the_operation_waited_shows_it_running_at_its_first_line(
    make_api, browser: Browser
):
    api: Api = make_api()
    alice = api.member("alice")
    api.settle(alice, create(alice, "w"))
    page = browser.new_page()
    problems = watched(page)
    page.goto(f"{api.url}/login")
    page.get_by_label("User name").fill("alice")
    page.get_by_label("Password").fill("alice-password-1234")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your workspaces")

    with driven(api, result=PENDING) as operation:
        page.goto(f"{api.url}/workspaces/w/detail")
        state = page.get_by_role("region", name="History").locator("#progress-state")
        expect(state).to_have_text("pending")
        operation.say("staging the home volume")
        expect(state).to_have_text("running", timeout=SHOWN_MS)
        operation.finish("succeeded", "backup 1 kept")
        expect(state).to_contain_text("succeeded", timeout=SHOWN_MS)
    assert problems == [], problems
