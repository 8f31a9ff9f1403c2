"""The dashboard in a real browser (Debian's Chromium, headless, driven by Playwright): sign
in, create a workspace with the form, watch it appear and run in the list, stop it.

Stand-ins (no engine): the provider and agent client are the fakes of ``tests.fakes``. That
suits a page test: what is checked is the pages, htmx under the Content-Security-Policy,
the CSRF header it sends and the live states, all of which read and change workspaces
through the same service whatever the provider.
"""

from __future__ import annotations

from playwright.sync_api import Browser, ConsoleMessage, expect

from tests.integration.server.live import Api

STATE_TIMEOUT_MS = 20_000  # the list polls every 3 s; the fake provider acts at once


def test_sign_in_create_watch_it_run_and_stop_it(make_api, browser: Browser) -> None:
    api: Api = make_api()
    api.member("alice")
    page = browser.new_page(viewport={"width": 360, "height": 800})
    problems: list[str] = []

    def console(message: ConsoleMessage) -> None:
        # A CSP violation, an htmx error, a failed load (the sign-in page's /favicon.ico too).
        if message.type == "error":
            problems.append(f"{message.text} ({message.location['url']})")

    page.on("console", console)
    page.on("pageerror", lambda error: problems.append(str(error)))
    failed: list[str] = []
    page.on("response", lambda answer: answer.status >= 400 and failed.append(answer.url))

    page.goto(f"{api.url}/")
    expect(page).to_have_url(f"{api.url}/login?next=%2Fworkspaces")
    page.get_by_label("User name").fill("alice")
    page.get_by_label("Password").fill("alice-password-1234")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your workspaces")
    expect(page.get_by_text("No workspaces yet")).to_be_visible()

    page.get_by_role("link", name="Create a workspace").click()
    page.get_by_label("Name", exact=True).fill("web")
    page.get_by_label("medium").check()
    page.get_by_role("button", name="Add a secret").click()  # htmx: a fourth row
    page.get_by_label("Secret 4 name").fill("API_KEY")
    page.get_by_label("Secret 4 value").fill("not-shown-again")
    page.get_by_role("button", name="Create workspace").click()

    expect(page).to_have_url(f"{api.url}/workspaces/web/detail")  # where its start streams
    expect(page.get_by_role("heading", level=1)).to_have_text("web")
    page.get_by_role("link", name="All workspaces").click()
    card = page.locator("#ws-web")
    expect(card.get_by_role("heading", name="web")).to_be_visible()
    expect(card.locator(".badge")).to_have_text("running", timeout=STATE_TIMEOUT_MS)
    expect(card.get_by_label("SSH, after dev8 config-ssh on your computer")).to_have_value(
        "ssh dev8.web"
    )
    expect(card.get_by_role("link", name="Open IDE of web")).to_have_attribute(
        "href", f"{api.url}/@alice/web/"
    )

    card.get_by_role("button", name="Stop web").click()
    expect(page.locator("#notice")).to_have_text("web: stopping.")
    expect(card.locator(".badge")).to_have_text("stopped", timeout=STATE_TIMEOUT_MS)
    made = api.admin().get("/api/v1/workspaces/web", params={"owner": "alice"}).json()
    assert (made["cpus"], made["secret_names"], made["state"]) == (4, ["API_KEY"], "stopped")
    assert "not-shown-again" not in page.content()

    # Delete asks first (hx-confirm: the browser's own dialog, no script of ours).
    asked: list[str] = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    card.get_by_role("button", name="Delete web").click()
    assert asked and "volumes are kept" in asked[0]
    kept = api.admin().get("/api/v1/workspaces/web", params={"owner": "alice"}).json()
    assert kept["desired_state"] == "stopped"  # dismissed: nothing asked of the server
    page.once("dialog", lambda dialog: dialog.accept())
    card.get_by_role("button", name="Delete web").click()
    expect(page.locator("#notice")).to_have_text("web: removing.")
    expect(card.locator(".badge")).to_have_text("removed", timeout=STATE_TIMEOUT_MS)
    assert failed == [] and problems == [], (failed, problems)
