"""The admin's policy for members (``dev8.service.policy``) and its settings: pure checks,
one-line refusals naming the setting, admins bound by the port rule and the environment
bounds alone."""

from __future__ import annotations

import pytest

from dev8.core.errors import InvalidInput, PolicyRefused
from dev8.core.quotas import GIB
from dev8.core.resources import Resources
from dev8.core.workspace import CreateRequest
from dev8.server.settings import load_settings
from dev8.service.policy import (
    MAX_VALUE_BYTES,
    MAX_VARIABLES,
    Limits,
    MemberPolicy,
    Usage,
    check_variables,
    owner_lock,
)

LIMITS = Limits(
    max_workspaces=2,
    max_cpus=4,
    max_memory_mb=8192,
    max_quota_bytes=300 * GIB,
    max_kept_backups=3,
    pin_ports=False,
    images=("dev8/workspace:latest",),
    server_port=8700,
)
MEMBER, ADMIN = MemberPolicy(LIMITS, member=True), MemberPolicy(LIMITS, member=False)


def request(**fields) -> CreateRequest:
    return CreateRequest(name="w", **fields)


@pytest.mark.parametrize(
    ("fields", "usage", "setting"),
    [
        ({"resources": Resources(5, 4096)}, Usage(), "DEV8_MEMBER_MAX_CPUS"),
        ({"resources": Resources(2, 8193)}, Usage(), "DEV8_MEMBER_MAX_MEMORY"),
        ({}, Usage(workspaces=2), "DEV8_MEMBER_MAX_WORKSPACES"),
        ({}, Usage(1, quota_bytes=200 * GIB), "DEV8_MEMBER_MAX_QUOTA"),  # +120 GiB default
        ({"image": "evil/miner:1"}, Usage(), "DEV8_IMAGES"),
        ({"host_ports": {"ide": 48080}}, Usage(), "DEV8_MEMBER_PIN_PORTS"),
        ({"host_ports": {"ssh": 8700}}, Usage(), "DEV8_PORT"),
    ],
)
def test_a_member_beyond_a_limit_is_refused_in_one_line_naming_the_setting(fields, usage, setting):
    with pytest.raises(PolicyRefused) as refused:
        MEMBER.check_create(request(**fields), usage)
    assert setting in refused.value.message and "\n" not in refused.value.message
    assert refused.value.http_status == 403


def test_within_the_limits_a_member_may_create():
    MEMBER.check_create(request(), Usage(1, 100 * GIB))
    MEMBER.check_create(request(image="dev8/workspace:latest"), Usage())
    MEMBER.check_create(request(image=""), Usage())  # the server's default


def test_an_admin_is_bound_by_the_port_rule_alone():
    huge = request(resources=Resources(64, 1 << 20), image="any/image:1", quotas={"home": 1 << 45})
    ADMIN.check_create(huge, Usage(workspaces=99, quota_bytes=1 << 50))
    ADMIN.check_create(request(host_ports={"ide": 48080}), Usage())
    for port in (8700, 80):
        with pytest.raises(PolicyRefused):
            ADMIN.check_create(request(host_ports={"ide": port}), Usage())
    assert ADMIN.backup_limit(kept=1000) == 0


def test_a_change_of_resources_may_keep_what_an_admin_granted_but_not_grow_it():
    granted = Resources(16, 32768)
    MEMBER.check_resources(Resources(16, 16384), granted)  # less memory, same CPUs
    MEMBER.check_resources(Resources(12, 32768), granted)
    with pytest.raises(PolicyRefused, match="DEV8_MEMBER_MAX_CPUS"):
        MEMBER.check_resources(Resources(17, 32768), granted)
    with pytest.raises(PolicyRefused, match="DEV8_MEMBER_MAX_MEMORY"):
        MEMBER.check_resources(Resources(2, 16384), Resources(2, 4096))


def test_a_rebuild_names_an_offered_image_or_keeps_its_own():
    MEMBER.check_image(None)
    MEMBER.check_image("dev8/workspace:latest")
    with pytest.raises(PolicyRefused, match="DEV8_IMAGES"):
        MEMBER.check_image("dev8/workspace:next")
    ADMIN.check_image("dev8/workspace:next")


def test_kept_backups_are_counted_with_the_new_one():
    assert MEMBER.backup_limit(kept=2) == 3
    with pytest.raises(PolicyRefused, match="DEV8_MEMBER_MAX_KEPT_BACKUPS"):
        MEMBER.backup_limit(kept=3)


def test_zero_means_no_limit():
    free = MemberPolicy(Limits(), member=True)
    big = request(resources=Resources(256, 1 << 20), image="x/y:1", host_ports={"ide": 9000})
    free.check_create(big, Usage(10_000, 1 << 50))
    assert free.backup_limit(kept=10_000) == 0


def test_env_and_secrets_are_bounded_for_everyone():
    check_variables("env", {f"V{n}": "x" * 300 for n in range(MAX_VARIABLES)})
    cases = [
        {f"V{n}": "" for n in range(MAX_VARIABLES + 1)},
        {"BIG": "x" * (MAX_VALUE_BYTES + 1)},
        {"WIDE": "é" * (MAX_VALUE_BYTES // 2 + 1)},  # counted in bytes
        {f"V{n}": "x" * 1024 for n in range(40)},  # 40 KiB in all
    ]
    for values in cases:
        with pytest.raises(InvalidInput):
            ADMIN.check_create(request(env=values), Usage())
        with pytest.raises(InvalidInput):
            ADMIN.check_create(request(secrets=values), Usage())


def test_the_owner_lock_is_a_safe_file_name_per_owner():
    assert owner_lock("a") != owner_lock("b")
    assert owner_lock("../etc/passwd").replace("-", "").isalnum()


def test_the_settings_read_sizes_with_units_and_refuse_bad_ones(monkeypatch):
    monkeypatch.setenv("DEV8_MEMBER_MAX_MEMORY", "32g")
    monkeypatch.setenv("DEV8_MEMBER_MAX_QUOTA", "2t")
    monkeypatch.setenv("DEV8_MEMBER_MAX_WORKSPACES", "0")
    monkeypatch.setenv("DEV8_IMAGES", "a:1, b:2")
    limits = load_settings(dev=True, port=9999).member_limits()
    assert (limits.max_memory_mb, limits.max_quota_bytes) == (32768, 2 * 1024**4)
    assert (limits.max_workspaces, limits.images, limits.server_port) == (0, ("a:1", "b:2"), 9999)
    monkeypatch.setenv("DEV8_MEMBER_MAX_QUOTA", "0")
    assert load_settings(dev=True).member_limits().max_quota_bytes == 0
    monkeypatch.setenv("DEV8_MEMBER_MAX_MEMORY", "lots")
    with pytest.raises(InvalidInput, match=r"^DEV8_MEMBER_MAX_MEMORY: .*invalid memory size"):
        load_settings(dev=True)


def test_the_defaults_let_a_member_make_the_most_workspaces_at_default_quotas():
    limits = load_settings(dev=True).member_limits()
    policy, usage = MemberPolicy(limits, member=True), Usage()
    for _ in range(limits.max_workspaces):
        policy.check_create(request(), usage)
        usage = Usage(usage.workspaces + 1, usage.quota_bytes + 120 * GIB)
    with pytest.raises(PolicyRefused):
        policy.check_create(request(), usage)
    assert not limits.pin_ports and limits.max_kept_backups > 0
