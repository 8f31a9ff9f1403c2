"""Attack: a token (or a browser session) taken while the old password was good keeps
working after the victim changes their password. Before the fix, a stolen token still
answered 200 after the change (`Accounts.change` never revoked anything); now a new password
revokes every token and session of the user but the one the change came with.

Stand-ins (no engine): the real app under uvicorn with the fake provider and agent of
``tests.fakes``; tokens and sessions are the same whatever the provider.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.server.live import Api, serving
from tests.integration.server.signed_in import HTML, Browser, sign_in

OLD, NEW = "alice-password-1234", "alice-new-password-5678"


@pytest.fixture
def api(tmp_path: Path, database_url: str) -> Iterator[Api]:
    with serving(tmp_path, database_url) as api:
        yield api


def signed_out(browser: Browser) -> bool:
    """Whether the dashboard sends this browser to the sign-in page."""
    page = browser.get("/workspaces", headers=HTML, follow_redirects=False)
    return page.status_code == 303 and page.headers["location"].startswith("/login")


def test_a_password_changed_by_its_owner_revokes_their_other_tokens_and_sessions(api: Api):
    api.member("alice")
    stolen = api.login("alice", OLD)
    session = sign_in(api, "alice", OLD)
    changing = api.login("alice", OLD)
    assert stolen.get("/api/v1/users/me").status_code == 200 and not signed_out(session)

    changed = changing.patch("/api/v1/users/alice", json={"password": NEW, "current_password": OLD})

    assert changed.status_code == 200, changed.text
    assert stolen.get("/api/v1/users/me").status_code == 401
    assert signed_out(session)
    # The token the change came with stays: the CLI that changed it is not logged out.
    assert changing.get("/api/v1/users/me").status_code == 200
    assert api.login("alice", NEW).get("/api/v1/users/me").status_code == 200


def test_a_password_reset_by_an_admin_revokes_every_token_of_the_user(api: Api):
    own = api.member("alice")
    session = sign_in(api, "alice", OLD)
    admin = api.admin()

    reset = admin.patch("/api/v1/users/alice", json={"password": NEW})

    assert reset.status_code == 200, reset.text
    assert own.get("/api/v1/users/me").status_code == 401
    assert signed_out(session)
    assert admin.get("/api/v1/users/me").status_code == 200  # the admin's token is theirs


def test_a_password_changed_on_the_dashboard_signs_out_the_other_sessions(api: Api):
    api.member("alice")
    stolen = api.login("alice", OLD)
    other = sign_in(api, "alice", OLD)
    here = sign_in(api, "alice", OLD)

    answer = here.post(
        "/account/password",
        token="",
        data={
            "csrf_token": here.csrf,
            "current_password": OLD,
            "password": NEW,
            "password_again": NEW,
        },
        headers=HTML,
    )

    assert answer.status_code == 200 and "Password changed" in answer.text, answer.text
    assert stolen.get("/api/v1/users/me").status_code == 401
    assert signed_out(other)
    assert not signed_out(here)


def test_changing_anything_but_the_password_revokes_nothing(api: Api):
    own = api.member("alice")
    assert own.patch("/api/v1/users/alice", json={"ssh_keys": ""}).status_code == 200
    assert own.get("/api/v1/users/me").status_code == 200
