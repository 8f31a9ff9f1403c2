"""Where archives go and which volume each archive restores: pure decisions."""

from pathlib import Path

import pytest
from tests.archives import manifest_for

from dev8.backup.archive import ArchiveFile
from dev8.core.errors import InvalidInput
from dev8.service.backups import compression_for, plan_outputs, plan_restore, roles_for
from dev8.service.volumes import _du_records, _largest


def test_roles_and_formats():
    assert roles_for("all") == ["home", "workspace", "system"]
    assert roles_for("home") == ["home"]
    assert compression_for("tar.gz") == "gzip"
    with pytest.raises(InvalidInput):
        roles_for("etc")
    with pytest.raises(InvalidInput):
        compression_for("zip")


def test_outputs_in_a_directory(tmp_path):
    plan = plan_outputs("demo", ["home", "system"], "zstd", tmp_path, "20260101T000000Z")
    assert plan["home"] == tmp_path / "demo-home-20260101T000000Z.tar.zst"
    assert (
        plan_outputs("d", ["home"], "gzip", f"{tmp_path}/", "S")["home"].name == "d-home-S.tar.gz"
    )


def test_output_file_for_one_volume(tmp_path):
    assert plan_outputs("d", ["home"], "zstd", tmp_path / "x.tar.zst", "S") == {
        "home": tmp_path / "x.tar.zst"
    }
    with pytest.raises(InvalidInput, match="give a directory"):
        plan_outputs("d", ["home", "workspace"], "zstd", tmp_path / "x.tar.zst", "S")
    with pytest.raises(InvalidInput, match=r"--format tar\.zst"):
        plan_outputs("d", ["home"], "gzip", tmp_path / "x.tar.zst", "S")
    with pytest.raises(InvalidInput, match="does not exist"):
        plan_outputs("d", ["home"], "zstd", tmp_path / "no" / "x.tar.zst", "S")


def archive(name: str, role: str | None) -> ArchiveFile:
    manifest = manifest_for(b"", "zstd", volume=role) if role else None
    return ArchiveFile(Path(name), "zstd", 10, 10, manifest)


def test_restore_plan_from_manifests_or_volume():
    plan = plan_restore([archive("h", "home"), archive("w", "workspace")], None)
    assert {role: a.path.name for role, a in plan.items()} == {"home": "h", "workspace": "w"}
    assert list(plan_restore([archive("seed", None)], "home")) == ["home"]
    picked = plan_restore([archive("h", "home"), archive("w", "workspace")], "workspace")
    assert list(picked) == ["workspace"]


@pytest.mark.parametrize(
    "archives,volume,message",
    [
        ([archive("seed", None)], None, "no dev8 manifest"),
        ([archive("h", "home")], "workspace", "holds the home volume"),
        ([archive("a", "home"), archive("b", "home")], None, "both hold the home volume"),
        ([archive("a", "home")], "etc", "unknown volume"),
        ([archive("a", "home"), archive("b", "system")], "workspace", "none of the archives"),
    ],
)
def test_restore_plan_errors(archives, volume, message):
    with pytest.raises(InvalidInput, match=message):
        plan_restore(archives, volume)


def test_du_records_keep_odd_names():
    output = b"1000\t/w\x00900\t/w/a b\x0050\t/w/new\nline\x00"
    assert _du_records(output) == [("/w", 1000), ("/w/a b", 900), ("/w/new\nline", 50)]


def test_largest_directories_show_the_child_that_holds_nearly_everything():
    records = [("/w", 1000), ("/w/a", 950), ("/w/a/b", 900), ("/w/c", 50)]
    assert _largest(records, 3) == [("/w/a/b", 900), ("/w/c", 50)]
    spread = [("/w", 1000), ("/w/a", 500), ("/w/b", 500)]
    assert _largest(spread, 5) == spread
    assert _largest(spread, 1) == [("/w", 1000)]


def test_disk_use_from_the_agent_and_the_stored_limits():
    from dev8.cli.render import disk_dict, disk_uses
    from dev8.core.resources import Resources
    from dev8.core.workspace import Workspace

    ws = Workspace("i", "n", "o", "img", "sha256:1", Resources(1, 1024), quotas={"home": 100})
    agent = {"disk": {"home": {"used_bytes": 85}, "workspace": {"path": "/workspace"}}}
    uses = disk_uses(ws, agent)
    assert [(u.role, u.level) for u in uses] == [("home", "warning")]
    assert disk_dict(uses)["home"] == {
        "used_bytes": 85, "quota_bytes": 100, "percent": 85, "level": "warning",
    }  # fmt: skip
    assert disk_uses(ws, None) == []
    # The agent's own limit wins: in server mode the CLI does not know the stored one.
    agent["disk"]["home"]["quota_bytes"] = 1000
    assert [(u.limit, u.level) for u in disk_uses(ws, agent)] == [(1000, "ok")]
