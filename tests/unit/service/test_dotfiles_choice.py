"""Which dotfiles repository a workspace's container is given, on the ``FakeProvider`` (no
engine): the workspace's own, else its owner's account setting, none when it says "";
stored with the workspace, validated before anything is made."""

from __future__ import annotations

import pytest
from tests.fakes import FakeAgent, FakeProvider

from dev8.core.dotfiles import DOTFILES_REPO
from dev8.core.errors import InvalidInput
from dev8.service.workspaces import CreateRequest, WorkspaceService
from dev8.store.store import Store

IMAGE = "dev8/workspace:test"
ACCOUNT = "https://github.com/alice/dotfiles"


@pytest.fixture
def provider() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
def service(sqlite_store: Store, provider: FakeProvider) -> WorkspaceService:
    return WorkspaceService(
        store=sqlite_store,
        provider=provider,
        owner="alice",
        account_dotfiles=lambda: ACCOUNT,
        agent=FakeAgent(),  # type: ignore[arg-type]
    )


def given(service: WorkspaceService, provider: FakeProvider, name: str, **fields) -> str | None:
    workspace = service.create(CreateRequest(name=name, image=IMAGE, **fields))
    return provider.containers[workspace.id].spec.env.get(DOTFILES_REPO)


def test_the_account_setting_applies_unless_the_workspace_names_its_own(service, provider):
    assert given(service, provider, "plain") == ACCOUNT
    own = "git@github.com:alice/work-dotfiles.git"
    assert given(service, provider, "own", dotfiles_repo=own) == own
    assert given(service, provider, "none", dotfiles_repo="") is None
    assert service.get("own").dotfiles_repo == own
    assert service.get("plain").dotfiles_repo is None
    assert service.get("none").dotfiles_repo == ""


def test_an_invalid_url_is_refused_before_anything_is_made(service, provider):
    with pytest.raises(InvalidInput, match="invalid dotfiles repository"):
        given(service, provider, "bad", dotfiles_repo="http://example.com/x")
    assert provider.containers == {} and service.store.find("alice", "bad") is None


def test_a_user_cannot_set_the_variable_themselves(service, provider):
    with pytest.raises(InvalidInput, match="set by dev8"):
        given(service, provider, "sneaky", env={DOTFILES_REPO: "file:///workspace/x"})
