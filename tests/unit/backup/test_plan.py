"""Where archives go and which volume each archive restores: pure decisions."""

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from tests.archives import manifest_for

from dev8.backup.archive import ArchiveFile
from dev8.backup.plan import (
    STAMP_PATTERN,
    compression_for,
    parse_stamp,
    plan_outputs,
    plan_restore,
    roles_for,
    stamp,
)
from dev8.core.errors import InvalidInput


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


def test_stamps_round_trip_in_utc():
    moment = datetime(2026, 3, 4, 5, 6, 7, tzinfo=timezone.utc)
    assert stamp(moment) == "20260304T050607Z"
    assert parse_stamp(stamp(moment)) == moment
    assert stamp(moment.astimezone(timezone(timedelta(hours=2)))) == "20260304T050607Z"
    assert re.fullmatch(STAMP_PATTERN, stamp())
    with pytest.raises(ValueError):
        parse_stamp("2026-03-04")
