"""The security headers of every page the server renders (the sign-in pages here, the
dashboard's templates, every error page), and the sign-in pages themselves: one layout,
every value from a request escaped, no scripts and no external assets."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from html import escape
from urllib.parse import quote

from fastapi.responses import HTMLResponse

_STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; background: #f4f5f7; color: #1d2330;
       display: flex; min-height: 100vh; margin: 0; align-items: center; justify-content: center; }
main { background: #fff; padding: 2rem 2.25rem; border-radius: 10px; width: 20rem;
       box-shadow: 0 2px 12px rgba(0, 0, 0, .08); }
h1 { font-size: 1.3rem; margin: 0 0 1.25rem; }
label { display: block; margin: .75rem 0 .25rem; font-weight: 600; }
input { width: 100%; box-sizing: border-box; padding: .5rem .6rem; font: inherit;
        border: 1px solid #c5cad3; border-radius: 6px; }
button { margin-top: 1.25rem; width: 100%; padding: .6rem; font: inherit; font-weight: 600;
         color: #fff; background: #2f5bd3; border: 0; border-radius: 6px; cursor: pointer; }
a.provider { display: block; margin-top: .75rem; padding: .6rem; text-align: center;
             font-weight: 600; color: #1d2330; border: 1px solid #c5cad3; border-radius: 6px;
             text-decoration: none; }
a.provider:hover, a.provider:focus { border-color: #2f5bd3; }
.or { margin: 1.25rem 0 0; text-align: center; color: #5c6473; }
.error { color: #b3261e; background: #fdecea; padding: .5rem .75rem; border-radius: 6px; }
"""
# The sign-in page's one inline style, allowed by its hash: no 'unsafe-inline' anywhere.
_STYLE_SOURCE = (
    "'sha256-" + base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode() + "'"
)


def page_headers(apps_domain: str | None = None) -> dict[str, str]:
    """The headers of every page: scripts, styles, images and fetches (``EventSource``
    included) from this origin only, no framing, nothing sniffed, nothing cached. A form's
    target covers the redirects after it too (in Chromium), so a sign-in on the way to an
    app host (the ticket exchange ends there) needs ``apps_domain``'s hosts."""
    targets = "'self'" + (f" *.{apps_domain}:*" if apps_domain else "")
    policy = (
        f"default-src 'none'; script-src 'self'; style-src 'self' {_STYLE_SOURCE}; "
        f"img-src 'self'; connect-src 'self'; form-action {targets}; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    return {
        "Content-Security-Policy": policy,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
    }


PAGE_HEADERS = page_headers()  # a page that posts only to this origin: the dashboard's


def page(title: str, body: str, status: int = 200, apps_domain: str | None = None) -> HTMLResponse:
    """``body`` (already escaped) in the layout."""
    html = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )
    return HTMLResponse(html, status_code=status, headers=page_headers(apps_domain))


def login_page(
    next_path: str,
    error: str = "",
    username: str = "",
    status: int = 200,
    apps_domain: str | None = None,
    providers: Sequence[tuple[str, str]] = (),
    password: bool = True,
) -> HTMLResponse:
    """The sign-in page: a link per identity provider (``(slug, label)``) and, unless
    ``password`` is off, the password form; ``next_path`` is where a sign-in goes. The
    providers are links, not forms: a form's CSP target would have to allow the provider."""
    message = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    buttons = "".join(
        f'<a class="provider" href="/login/{quote(slug)}?next={quote(next_path, safe="")}">'
        f"Sign in with {escape(label)}</a>"
        for slug, label in providers
    )
    form = (
        '<form method="post" action="/login">'
        f'<input type="hidden" name="next" value="{escape(next_path)}">'
        '<label for="username">User name</label>'
        f'<input id="username" name="username" value="{escape(username)}" '
        'autocomplete="username" autocapitalize="none" required autofocus>'
        '<label for="password">Password</label>'
        '<input id="password" name="password" type="password" '
        'autocomplete="current-password" required>'
        '<button type="submit">Sign in</button></form>'
    )
    separator = '<p class="or">or</p>' if buttons and password else ""
    return page(
        "Sign in · dev8",
        f"<h1>Sign in to dev8</h1>{message}{buttons}{separator}{form if password else ''}",
        status,
        apps_domain,
    )
