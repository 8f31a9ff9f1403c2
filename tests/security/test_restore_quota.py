"""Issue 16, item 15: a restore larger than the workspace's quota was accepted without a
word (a 4 GiB archive into a workspace with a 1 GiB home quota). Now an archive restore is
checked before it starts: each volume's data (the files' bytes its check counted) against
that volume's quota, and (with a block per entry on top) against the space free where it
is staged, beside the current data. Either refusal is a one-line 409 naming the volume, the
size and the limit, and nothing is created, staged or stopped.

The same at a small scale (a 4 MiB archive, a 1 MiB quota; 1 MiB free) on the fake
provider, whose helpers only record their jobs: the refusal comes before any helper that
writes. A snapshot restore is measured once fetched and checked the same way (an engine test
in tests/integration/backup/test_snapshots.py).
"""

from __future__ import annotations

import io
import os
import tarfile

import pytest

from dev8.core.errors import Conflict, CorruptArchive
from dev8.core.quotas import MIN_QUOTA
from dev8.service.restores import Restores
from dev8.service.volume_jobs import VolumeJobs
from dev8.service.workspaces import CreateRequest, WorkspaceService
from dev8.store.store import Store
from tests.unit.service.test_restores import OWNER, HelperProvider, Messages

SIZE = 4 * MIN_QUOTA  # 4 MiB of files against a 1 MiB quota


@pytest.fixture
def provider() -> HelperProvider:
    return HelperProvider()


@pytest.fixture
def service(sqlite_store: Store, provider: HelperProvider) -> WorkspaceService:
    return WorkspaceService(store=sqlite_store, provider=provider, owner=OWNER)


@pytest.fixture
def restores(service: WorkspaceService, provider: HelperProvider) -> Restores:
    return Restores(service, VolumeJobs(provider, OWNER, "restore"))


@pytest.fixture
def archive(tmp_path):
    """A home archive as the seed's command makes one: 4 MiB in one file."""
    path = tmp_path / "home.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        member = tarfile.TarInfo("./big.bin")
        member.size = SIZE
        tar.addfile(member, io.BytesIO(os.urandom(SIZE)))
    return path


def test_an_archive_over_the_volume_s_quota_is_refused_before_anything(
    service, provider, restores, archive
):
    service.create(
        CreateRequest(name="demo", image="dev8/workspace:test", quotas={"home": MIN_QUOTA})
    )
    with pytest.raises(Conflict) as refused:
        restores.from_archives("demo", [archive], volume="home", progress=Messages())
    message = refused.value.message
    assert "\n" not in message and refused.value.http_status == 409
    assert "home data to restore is 4.0 MiB" in message and "1.0 MiB quota" in message
    assert provider.jobs == []  # no helper: nothing settled, staged or swapped
    assert service.history("demo")[0].action != "restore"


def test_a_new_workspace_gets_the_quota_of_the_one_it_copies(service, provider, restores, archive):
    service.create(
        CreateRequest(name="demo", image="dev8/workspace:test", quotas={"home": MIN_QUOTA})
    )
    with pytest.raises(Conflict, match="copy's home volume"):
        restores.from_archives(
            "demo", [archive], volume="home", as_name="copy", progress=Messages()
        )
    assert service.store.find(OWNER, "copy") is None and provider.jobs == []


def test_an_archive_beyond_the_free_space_is_refused_before_staging(
    service, provider, restores, archive
):
    service.create(CreateRequest(name="demo", image="dev8/workspace:test"))
    provider.free["home"] = MIN_QUOTA
    with pytest.raises(Conflict) as refused:
        restores.from_archives("demo", [archive], volume="home", progress=Messages())
    message = refused.value.message
    assert "needs up to 4.0 MiB" in message and "has 1.0 MiB free" in message
    # Only the helper that settles earlier restores and measures ran: nothing was staged.
    assert [job.argv[3] for job in provider.jobs] == ["ready"]


def test_an_archive_within_quota_and_space_is_restored(service, provider, restores, archive):
    service.create(CreateRequest(name="demo", image="dev8/workspace:test"))
    provider.free["home"] = 8 * MIN_QUOTA
    with pytest.raises(CorruptArchive, match="changed between the check and the restore"):
        # The fake helper extracts nothing (so reports no hash): staging went ahead.
        restores.from_archives("demo", [archive], volume="home", progress=Messages())
    assert [job.argv[3] for job in provider.jobs if job.purpose == "swap"] == ["ready", "abort"]
