"""Disabling a user in the ``Accounts`` service, on a real SQLite store: their password and
tokens are refused while disabled and work again once enabled; an admin cannot disable
themselves, nor anyone the last enabled admin (who also cannot be demoted or deleted)."""

import pytest

from dev8.core.errors import Conflict, Unauthorized
from dev8.core.users import ACCOUNT_DISABLED, Role
from dev8.service.accounts import BAD_LOGIN, Accounts
from dev8.store.store import Store

PASSWORD = "a-long-enough-password"


@pytest.fixture
def accounts(tmp_path) -> Accounts:
    accounts = Accounts(Store.open_sqlite(tmp_path / "dev8.db"))
    for name, role in (("root", Role.ADMIN), ("boss", Role.ADMIN), ("bob", Role.MEMBER)):
        accounts.create_user(name, PASSWORD, role)
    return accounts


def test_a_disabled_user_is_refused_and_enabled_again(accounts):
    root, bob = accounts.user("root"), accounts.user("bob")
    _token, secret = accounts.issue_token(bob, "cli", 1)
    assert accounts.verify_token(secret)[0].name == "bob"  # now in the cache too
    disabled = accounts.change(bob, disabled=True, by=root)
    assert disabled.disabled and disabled.disabled_at is not None
    assert accounts.cached_token(secret) is None  # forgotten: the next request asks again
    assert accounts.verify_token(secret)[0].disabled  # what token_user then refuses
    with pytest.raises(Unauthorized, match=ACCOUNT_DISABLED):
        accounts.authenticate("bob", PASSWORD)
    with pytest.raises(Unauthorized, match=BAD_LOGIN):  # a stranger learns nothing
        accounts.authenticate("bob", "not-the-password")
    enabled = accounts.change(disabled, disabled=False, by=root)
    assert not enabled.disabled and enabled.disabled_at is None
    assert accounts.authenticate("bob", PASSWORD).name == "bob"
    assert not accounts.verify_token(secret)[0].disabled


def test_an_admin_cannot_disable_themselves(accounts):
    root = accounts.user("root")
    with pytest.raises(Conflict, match="your own account"):
        accounts.change(root, disabled=True, by=root)
    assert not accounts.user("root").disabled


def test_the_last_enabled_admin_stays(accounts):
    root, boss = accounts.user("root"), accounts.user("boss")
    accounts.change(boss, disabled=True, by=root)
    for change in ({"disabled": True}, {"role": Role.MEMBER}):
        with pytest.raises(Conflict, match="root is the last enabled admin"):
            accounts.change(root, **change)
    with pytest.raises(Conflict, match="last enabled admin"):
        accounts.delete_user(root)
    # A disabled admin is nobody's last admin: demoting them is fine.
    assert accounts.change(accounts.user("boss"), role=Role.MEMBER).role is Role.MEMBER


def test_a_refused_change_changes_nothing(accounts):
    root = accounts.user("root")
    with pytest.raises(Conflict):
        accounts.change(root, dotfiles_repo="https://example.com/d.git", disabled=True, by=root)
    assert accounts.user("root").dotfiles_repo == ""
