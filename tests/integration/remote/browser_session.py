"""One browser session on the laptop, run as its own process inside the laptop's network
namespace (``ip netns exec``) by ``test_browser.py``: real Chromium (Debian's, driven by
Playwright's sync API, headless) opens a URL, signs in on dev8's sign-in page when it is
sent there, waits for VS Code's workbench, and creates and saves a file with the editor.

    python browser_session.py '{"url": ..., "username": ..., "password": ..., "file": ...,
                                "text": ..., "resolver_rules": ..., "artifacts": DIR,
                                "sign_in_first": URL (optional: sign in there before)}'

Prints one JSON object: where the sign-in page was, every URL the page's navigations
requested (redirects included), the final URL. Exits
1 with {"error": ...} (and a screenshot in ``artifacts``) when a step fails.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from playwright.sync_api import Page, Request, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

# The one definition of how tests run Chromium (this script runs alone on the laptop, so the
# others import it from here): Debian's, headless as root, no GPU, no traffic of its own.
CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WORKBENCH = ".monaco-workbench"
QUICK_INPUT = ".quick-input-widget .quick-input-box input"
STEP_MS = 60_000
TRY_MS = 15_000  # one try of a step that is tried again (``retried``)
TRIES = 4
T = TypeVar("T")


def sign_in_if_asked(page: Page, username: str, password: str) -> str | None:
    """Fill dev8's sign-in form if the page is it; the URL it was at, else None."""
    form = page.locator("form:has(input[name=username])")
    if form.count() == 0:
        return None
    at = page.url
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    # Where the form leads (possibly through redirects to other hosts) is for the caller to
    # wait for: the workbench.
    page.locator("input[name=password]").press("Enter")
    return at


def wait_for_workbench(page: Page) -> None:
    page.wait_for_selector(WORKBENCH, timeout=STEP_MS)
    # The status bar comes once the workbench is connected to its server (the WebSocket).
    page.wait_for_selector(".part.statusbar", timeout=STEP_MS)


def run_command(page: Page, command: str) -> None:
    """A command from the palette (F1), by its title."""
    page.keyboard.press("F1")
    box = page.locator(QUICK_INPUT)
    box.wait_for(state="visible", timeout=TRY_MS)
    box.fill(f">{command}", timeout=TRY_MS)
    # Exactly that command: the fuzzy match lists look-alikes first ("Compare New Untitled...").
    # A row's aria-label is the title, then ", " and the key binding when it has one.
    rows = ".quick-input-list .monaco-list-row"
    row = page.locator(f'{rows}[aria-label="{command}"], {rows}[aria-label^="{command}, "]')
    row.first.click(timeout=TRY_MS)


def answer_trust_prompts(page: Page) -> None:
    """Answer VS Code's "Do you trust the authors of the files in this folder?" whenever it
    comes up (once per new workspace, a moment after the workbench, when the folder is
    opened): restricted mode, which still edits and saves files. Playwright runs the
    handler before each action on a locator while the dialog is visible."""
    dialog = page.locator(".monaco-dialog-box").filter(has_text="trust the authors")
    page.add_locator_handler(
        dialog, lambda box: box.locator("a.monaco-button", has_text="No, I").click()
    )


def retried(page: Page, what: str, step: Callable[[], T]) -> T:
    """``step``, tried again when it times out: the workbench is still starting while the
    steps run, and what it opens by itself (the trust prompt, then the Welcome walkthrough)
    takes the focus or closes the palette on its way."""
    for _ in range(TRIES):
        # An action on a locator: a trust prompt that came up is answered before it.
        page.locator(".part.statusbar").hover(timeout=STEP_MS)
        try:
            return step()
        except PlaywrightTimeout as exc:
            failure = exc
            print(f"{what}: {exc}".splitlines()[0], file=sys.stderr)  # the test shows it
    raise AssertionError(f"{what}: {failure}".splitlines()[0])


def create_file(page: Page, path: str, text: str) -> None:
    """A new untitled editor, ``text`` typed into it, saved as ``path`` through the Save As
    dialog (in the browser, code-server's dialog is a quick input holding a path)."""
    name = path.rsplit("/", 1)[-1]
    editor = page.locator(".editor-instance .monaco-editor.focused").first

    def new_editor() -> str:
        run_command(page, "File: New Untitled Text File")
        editor.wait_for(timeout=TRY_MS)
        return page.locator(".tab.active .label-name").first.inner_text()

    untitled = retried(page, "a new untitled editor", new_editor)  # "Untitled-N"
    tab = page.locator(".tab", has_text=untitled).first  # its description, once it has text

    def type_text() -> None:
        tab.click(timeout=TRY_MS)
        editor.wait_for(timeout=TRY_MS)
        page.keyboard.press("Control+a")
        page.keyboard.type(text)
        # Keys typed while something else had the focus are lost: check what the editor has.
        lines = editor.locator(".view-lines")
        lines.filter(has_text=text).wait_for(timeout=TRY_MS)
        if lines.inner_text().strip() != text:
            raise PlaywrightTimeout(f"the editor holds {lines.inner_text()!r}")

    retried(page, f"{text!r} typed into {untitled}", type_text)
    saved = page.locator(f".tab:not(.dirty) .label-name:text-is('{name}')").first

    box = page.locator(QUICK_INPUT)

    def save() -> None:
        if saved.count():
            return
        if box.is_visible():
            # A box left open by a try that failed covers the tab: cancel it and start over.
            box.press("Escape", timeout=TRY_MS)
            box.wait_for(state="hidden", timeout=TRY_MS)
        tab.click(timeout=TRY_MS)
        page.keyboard.press("Control+s")
        box.wait_for(state="visible", timeout=TRY_MS)
        # The dialog writes its proposal (the folder opened, /workspace, and a name from the
        # first line) into the box once it has read the folder, "/" before that: a path
        # typed earlier is overwritten. Only the proposal's file name is then replaced,
        # typed as a user types it: a value set at once (fill) is shown but not what the
        # dialog saves to, and a typed "/" makes it complete folder names under the keys.
        folder = path.rsplit("/", 1)[0] + "/"
        page.wait_for_function(
            "([selector, folder]) => {"
            "  const value = document.querySelector(selector)?.value || '';"
            "  return value.startsWith(folder) && value.length > folder.length; }",
            arg=[QUICK_INPUT, folder],
            timeout=TRY_MS,
        )
        box.evaluate(
            "(input, start) => input.setSelectionRange(start, input.value.length)", len(folder)
        )
        page.keyboard.type(name, delay=20)
        # The dialog rewrites the box when its listing of the folder arrives, which can drop
        # keys typed meanwhile: the box must settle on the whole path.
        try:
            page.wait_for_function(
                "([selector, path]) => document.querySelector(selector)?.value === path",
                arg=[QUICK_INPUT, path],
                timeout=TRY_MS // 3,
            )
        except PlaywrightTimeout:
            raise PlaywrightTimeout(f"the Save As box holds {box.input_value()!r}") from None
        box.press("Enter", timeout=TRY_MS)
        # The tab takes the file's name, and loses the "dirty" mark, once it is written.
        saved.wait_for(timeout=TRY_MS)

    retried(page, f"{untitled} saved as {path}", save)


def session(spec: dict[str, Any]) -> dict[str, Any]:
    args = list(FLAGS)
    if spec.get("resolver_rules"):
        args.append(f"--host-resolver-rules={spec['resolver_rules']}")
    visited: list[str] = []
    artifacts = Path(spec.get("artifacts") or ".")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        page = browser.new_page()

        # Every URL the page's own navigations requested, redirects included.
        def record(request: Request) -> None:
            if request.is_navigation_request() and request.frame == page.main_frame:
                visited.append(request.url)

        page.on("request", record)
        try:
            started = time.monotonic()
            first_signed_in_at = None
            if spec.get("sign_in_first"):  # signed in already (e.g. on the dashboard)
                page.goto(spec["sign_in_first"], timeout=STEP_MS)
                first_signed_in_at = sign_in_if_asked(page, spec["username"], spec["password"])
                page.wait_for_load_state(timeout=STEP_MS)
            page.goto(spec["url"], timeout=STEP_MS)
            signed_in_at = sign_in_if_asked(page, spec["username"], spec["password"])
            answer_trust_prompts(page)
            wait_for_workbench(page)
            loaded_s = time.monotonic() - started
            if spec.get("file"):
                create_file(page, spec["file"], spec["text"])
            return {
                "signed_in_first_at": first_signed_in_at,
                "signed_in_at": signed_in_at,
                "visited": visited,
                "final_url": page.url,
                "workbench_s": round(loaded_s, 2),
                "password_prompts": page.locator("input[type=password]").count(),
            }
        except Exception:
            page.screenshot(path=str(artifacts / "browser-failure.png"))
            (artifacts / "browser-failure.html").write_text(page.content())
            raise
        finally:
            browser.close()


def main() -> int:
    spec = json.loads(sys.argv[1])
    try:
        print(json.dumps(session(spec)))
    except Exception as exc:  # one line for the test's assertion message
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}".splitlines()[0]}))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
