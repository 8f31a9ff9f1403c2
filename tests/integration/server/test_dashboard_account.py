"""The account and admin pages against the real app under uvicorn: tokens shown once and
revoked, SSH keys saved, the current password a member must give, the admin page (403 for a
member, as the API's admin endpoints), adding a user who can then sign in, and the audit
log's filters.

Stand-ins (no engine): the provider and agent client are the fakes of ``tests.fakes``
(``alice`` and ``bob`` are conftest's); these pages change accounts through the same
``Accounts`` service as the API, whatever the provider.
"""

from __future__ import annotations

import re

import httpx

from tests.integration.server.live import ADMIN_PASSWORD, Api
from tests.integration.server.signed_in import HTML, Browser, sign_in

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKl4d3RkZWZhdWx0a2V5Zm9ydGVzdHNvbmx5MTIz alice@laptop"


def form(browser: Browser, **fields: str) -> dict[str, str]:
    """A form's fields with its hidden CSRF token, as the page's form sends them."""
    return {"csrf_token": browser.csrf, **fields}


def submit(browser: Browser, path: str, **fields: str) -> httpx.Response:
    """A browser without JavaScript submitting a page's form (the token in the form)."""
    return browser.post(path, token="", data=form(browser, **fields), headers=HTML)


def test_the_account_page_shows_the_forms_labelled_and_the_nav(api, alice):
    page = alice.get("/account")
    assert page.status_code == 200
    for field in ("token-name", "ssh_keys", "dotfiles_repo", "current_password", "password"):
        assert f'<label for="{field}"' in page.text or f'for="{field}"' in page.text
    assert 'href="/account" aria-current="page"' in page.text
    assert 'href="/admin"' not in page.text  # a member has no admin link
    assert page.text.count('name="csrf_token"') >= 4


def test_a_token_is_shown_once_listed_and_revoked(api: Api, alice):
    created = submit(alice, "/account/tokens", name="laptop", expires_in_days="7")
    assert created.status_code == 200, created.text
    secret = re.search(r'id="created-token" class="ssh" value="(dev8_[^"]+)"', created.text)[1]
    with httpx.Client(base_url=api.url, timeout=30) as client:
        me = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.json()["name"] == "alice"

    reload = alice.get("/account")
    assert secret not in reload.text and "created-token" not in reload.text
    assert "laptop" in reload.text and secret[:12] in reload.text
    token_id = re.search(r'id="revoke-([0-9a-f]+)"', reload.text)[1]
    assert 'hx-confirm="Revoke the token laptop?' in reload.text

    revoked = alice.post(f"/account/tokens/{token_id}/revoke", headers={"HX-Request": "true"})
    assert revoked.status_code == 200 and "Token laptop revoked." in revoked.text
    with httpx.Client(base_url=api.url, timeout=30) as client:
        refused = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {secret}"})
    assert refused.status_code == 401


def test_another_members_token_cannot_be_revoked(api, alice, bob):
    submit(alice, "/account/tokens", name="laptop")
    token_id = re.search(r'id="revoke-([0-9a-f]+)"', alice.get("/account").text)[1]
    refused = bob.post(f"/account/tokens/{token_id}/revoke", headers=HTML)
    assert refused.status_code == 404
    assert 'id="revoke-' + token_id in alice.get("/account").text


def test_ssh_keys_and_dotfiles_are_saved(api: Api, alice):
    saved = submit(alice, "/account/ssh-keys", ssh_keys=KEY)
    assert saved.status_code == 200 and "SSH keys saved" in saved.text, saved.text
    alice_api = api.login("alice", "alice-password-1234")
    assert alice_api.get("/api/v1/users/me").json()["ssh_keys"].strip() == KEY
    assert KEY in alice.get("/account").text

    bad = submit(alice, "/account/ssh-keys", ssh_keys="not a key")
    assert bad.status_code == 422
    assert re.search(r'<p class="error" role="alert">[^<\n]+</p>', bad.text)

    repo = "https://example.invalid/alice/dotfiles.git"
    saved = submit(alice, "/account/dotfiles", dotfiles_repo=repo)
    assert saved.status_code == 200, saved.text
    assert alice_api.get("/api/v1/users/me").json()["dotfiles_repo"] == repo


def test_a_wrong_current_password_is_refused_and_the_right_one_changes_it(api: Api, alice):
    new = "alice-new-password-5678"
    wrong = submit(
        alice, "/account/password", current_password="nope", password=new, password_again=new
    )
    assert wrong.status_code == 403
    assert '<p class="error" role="alert">the current password is wrong or missing</p>' in (
        wrong.text
    )
    with httpx.Client(base_url=api.url, timeout=30) as client:
        old = {"username": "alice", "password": "alice-password-1234"}
        assert client.post("/api/v1/auth/login", json=old).status_code == 201

    done = submit(
        alice,
        "/account/password",
        current_password="alice-password-1234",
        password=new,
        password_again=new,
    )
    assert done.status_code == 200 and "Password changed." in done.text
    sign_in(api, "alice", new)


def test_the_admin_page_is_forbidden_to_a_member(api, alice, bob):
    page = alice.get("/admin", headers=HTML)
    assert page.status_code == 403
    assert '<p class="error" role="alert">only an admin may do this</p>' in page.text
    added = submit(alice, "/admin/users", name="mallory", password="mallory-password-1")
    assert added.status_code == 403
    assert alice.post("/admin/users/bob/role", data={"role": "admin"}).status_code == 403


def test_the_admin_page_shows_users_workspaces_and_health(api, alice, bob):
    admin = sign_in(api, "admin", ADMIN_PASSWORD)
    page = admin.get("/admin")
    assert page.status_code == 200
    assert 'href="/admin" aria-current="page"' in page.text
    assert 'id="user-alice"' in page.text and 'id="user-bob"' in page.text
    assert '<a href="/workspaces?owner=alice">alice</a>' in page.text
    assert "Workspaces running: <strong>1</strong>" in page.text
    assert re.search(r'id="unfinished">\d+</strong>', page.text)


def test_an_admin_adds_a_user_who_can_sign_in_and_changes_a_role(api: Api):
    admin = sign_in(api, "admin", ADMIN_PASSWORD)
    added = submit(admin, "/admin/users", name="carol", password="", role="member")
    assert added.status_code == 200, added.text
    password = re.search(r'id="created-password" class="ssh" value="([^"]+)"', added.text)[1]
    assert "created-password" not in admin.get("/admin").text
    carol = sign_in(api, "carol", password)
    assert carol.get("/admin", headers=HTML).status_code == 403

    promoted = submit(admin, "/admin/users/carol/role", role="admin")
    assert promoted.status_code == 200 and "carol is now admin." in promoted.text
    assert carol.get("/admin").status_code == 200

    taken = submit(admin, "/admin/users", name="carol", password="carol-password-1")
    assert taken.status_code == 409
    assert re.search(r'<p class="error" role="alert">[^<\n]+</p>', taken.text)


def test_audit_filters_narrow_the_list(api: Api, alice, bob):
    bob_api = api.login("bob", "bob-password-1234")
    assert bob_api.post("/api/v1/workspaces/nothing-here/start").status_code == 404
    admin = sign_in(api, "admin", ADMIN_PASSWORD)

    def entries(**query: str) -> list[str]:
        page = admin.get("/admin", params=query)
        assert page.status_code == 200, page.text
        return re.findall(r'<tr class="audit-entry">(.*?)</tr>', page.text, re.S)

    everything = entries()
    assert any("<td>bob</td>" in entry for entry in everything)
    assert any("<td>alice</td>" in entry for entry in everything)
    bobs = entries(user="bob")
    assert bobs and all("<td>bob</td>" in entry for entry in bobs)
    missing = entries(user="bob", status="404")
    assert missing and all("<td>404</td>" in entry for entry in missing)
    assert len(missing) < len(bobs)
    by_path = entries(action="/api/v1/workspaces/nothing-here")
    assert by_path and all("/api/v1/workspaces/nothing-here" in entry for entry in by_path)
    assert entries(status="4xx") and not entries(user="nobody-at-all")
    assert admin.get("/admin", params={"status": "4x"}, headers=HTML).status_code == 422


def test_the_add_user_form_makes_a_member_unless_told_otherwise(api: Api):
    """A browser sends the selected option: the form must preselect the least privilege."""
    page = sign_in(api, "admin", ADMIN_PASSWORD).get("/admin").text
    select = re.search(r'<select id="new-role" name="role">(.*?)</select>', page, re.S)
    assert select is not None
    selected = re.findall(r'<option value="(\w+)" selected>', select[1])
    assert selected == ["member"]
