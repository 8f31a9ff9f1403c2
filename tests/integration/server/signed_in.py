"""A browser signed in to the dashboard, as the dashboard's tests drive it over HTTP."""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx

from tests.integration.server.live import Api, http_client

HTML = {"Accept": "text/html"}


@dataclass
class Browser:
    """A signed-in browser: its session cookie, sent as a header (no jar: the test server
    speaks plain HTTP and the cookie is Secure), and the CSRF token its pages carry."""

    url: str
    cookie: str
    csrf: str = ""

    def request(self, method: str, path: str, **options) -> httpx.Response:
        headers = {"Cookie": f"dev8_session={self.cookie}", **options.pop("headers", {})}
        with http_client(self.url) as client:
            return client.request(method, path, headers=headers, **options)

    def get(self, path: str, **options) -> httpx.Response:
        return self.request("GET", path, **options)

    def post(self, path: str, token: str | None = None, **options) -> httpx.Response:
        """A change with the CSRF token as htmx sends it (``token`` overrides it)."""
        headers = {"X-CSRF-Token": self.csrf if token is None else token}
        headers |= options.pop("headers", {})
        return self.request("POST", path, headers=headers, **options)


def sign_in(api: Api, name: str, password: str) -> Browser:
    with http_client(api.url) as client:
        answer = client.post("/login", data={"username": name, "password": password})
    assert answer.status_code == 303, answer.text
    browser = Browser(api.url, answer.cookies["dev8_session"])
    page = browser.get("/workspaces")
    assert page.status_code == 200, page.text
    browser.csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)[1]
    return browser
