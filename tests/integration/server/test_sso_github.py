"""Signing in with GitHub, against a local stand-in for GitHub: its OAuth authorize and
token endpoints, ``/user``, ``/user/emails`` and ``/user/orgs`` (a small FastAPI app under a
real uvicorn on loopback, replacing github.com and api.github.com, which tests never
reach). The stand-in signs in whoever ``next_person`` names, as GitHub would after its
own sign-in page."""

from __future__ import annotations

import secrets
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
from fastapi import FastAPI, Form, Header, HTTPException
from fastapi.responses import RedirectResponse

from tests.integration.server.live import LiveServer

PEOPLE = {
    "octo": {"id": 101, "login": "Octo", "email": "octo@corp.test", "orgs": ["Corp"]},
    "stranger": {"id": 102, "login": "stranger", "email": "s@else.test", "orgs": ["other"]},
}


def github_stand_in(next_person: list[str]) -> FastAPI:
    app = FastAPI()
    codes: dict[str, dict] = {}
    tokens: dict[str, dict] = {}

    @app.get("/login/oauth/authorize")
    def authorize(redirect_uri: str, state: str, client_id: str, code_challenge: str):
        code = secrets.token_urlsafe(8)
        codes[code] = PEOPLE[next_person[0]]
        return RedirectResponse(f"{redirect_uri}?{urlencode({'code': code, 'state': state})}")

    @app.post("/login/oauth/access_token")
    def token(code: str = Form(), code_verifier: str = Form()):
        person = codes.pop(code, None)  # one use, as GitHub's
        if person is None:
            return {"error": "bad_verification_code"}
        access = secrets.token_urlsafe(8)
        tokens[access] = person
        return {"access_token": access, "token_type": "bearer", "scope": "read:user"}

    def holder(authorization: str) -> dict:
        person = tokens.get(authorization.removeprefix("Bearer "))
        if person is None:
            raise HTTPException(401)
        return person

    @app.get("/user")
    def user(authorization: str = Header()):
        person = holder(authorization)
        return {"id": person["id"], "login": person["login"], "email": None}

    @app.get("/user/emails")
    def emails(authorization: str = Header()):
        person = holder(authorization)
        return [{"email": person["email"], "primary": True, "verified": True}]

    @app.get("/user/orgs")
    def orgs(authorization: str = Header()):
        return [{"login": name} for name in holder(authorization)["orgs"]]

    return app


@pytest.fixture
def github():
    chosen = ["octo"]
    with LiveServer(github_stand_in(chosen)) as server:
        yield server.url, chosen


def sign_in(api, browser: httpx.Client) -> httpx.Response:
    start = browser.get("/login/github", params={"next": "/after"})
    assert start.status_code == 303
    at_github = httpx.get(start.headers["location"])
    assert at_github.status_code == 307
    back = urlsplit(at_github.headers["location"])
    return browser.get(f"{back.path}?{back.query}")


def test_an_organisation_member_signs_in_and_others_are_refused(make_api, github):
    url, chosen = github
    api = make_api(
        dev=True,
        github_client_id="gh-client",
        github_client_secret="gh-secret",
        github_url=url,
        github_api_url=url,
        sso_allowed_github_orgs="corp",
        sso_admins="octo",
    )
    with httpx.Client(base_url=api.url) as browser:
        done = sign_in(api, browser)
        assert done.status_code == 303 and done.headers["location"] == "/after"
        session = browser.cookies["dev8_session"]
    me = httpx.get(f"{api.url}/api/v1/users/me", headers={"Authorization": f"Bearer {session}"})
    assert me.json()["name"] == "octo" and me.json()["role"] == "admin"
    identity = api.context.store.identities.get(url, "101")
    assert identity is not None and identity.email == "octo@corp.test"
    chosen[0] = "stranger"
    with httpx.Client(base_url=api.url) as browser:
        refused = sign_in(api, browser)
        assert refused.status_code == 403 and "dev8_session" not in browser.cookies
    assert api.context.store.identities.get(url, "102") is None
    assert api.context.store.users.by_name("stranger") is None
