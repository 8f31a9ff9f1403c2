from datetime import datetime, timedelta, timezone

from dev8.core.resources import Resources
from dev8.core.workspace import Workspace
from dev8.service.idle import describe_idle, effective_timeout_s, idle_deadline

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)


def workspace(**fields) -> Workspace:
    return Workspace(
        id="i",
        name="n",
        owner="o",
        image_ref="r",
        image_id="s",
        resources=Resources(1, 1024),
        created_at=NOW - timedelta(hours=1),
        **fields,
    )


def test_the_server_default_applies_unless_the_workspace_sets_its_own():
    assert effective_timeout_s(workspace(), 1800) == 1800
    assert effective_timeout_s(workspace(idle_timeout_s=60), 1800) == 60
    assert effective_timeout_s(workspace(idle_timeout_s=0), 1800) == 0


def test_the_deadline_runs_from_the_last_activity_else_from_creation():
    active = workspace(last_activity_at=NOW, idle_timeout_s=600)
    assert idle_deadline(active, 1800) == NOW + timedelta(seconds=600)
    assert idle_deadline(workspace(), 1800) == NOW - timedelta(hours=1) + timedelta(minutes=30)


def test_off_means_never():
    assert idle_deadline(workspace(idle_timeout_s=0), 1800) is None
    assert idle_deadline(workspace(), 0) is None


def test_durations_read_naturally():
    assert [describe_idle(s) for s in (1800, 7200, 90, 12)] == ["30 min", "2 h", "90 s", "12 s"]
