"""What `dev8 du` and `dev8 volume ls` make of the helper's `du` output: pure functions."""

from dev8.service.volumes import _du_records, _largest


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
