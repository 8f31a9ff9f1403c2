"""The shape of a workspace agent's answers (``GET /status``, ``GET /health``), checked field
by field. Pure.

The answer comes from inside a workspace whose owner is root there and may replace the agent,
so the server keeps nothing of it unchecked: every field has a type and bounds (a time is a
finite number of seconds between 1970 and 2100, a count a non-negative integer, strings and
lists are short), fields this version does not know are dropped, and any other answer is
refused whole with one line naming the field. A field the agent leaves out stays absent
(readers use ``.get``).

Hand-written rather than a pydantic model: the CLI asks agents too, imports no pydantic
today, and a model would add about 100 ms to each of its commands.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NoReturn

from dev8.core.errors import ProviderError

Check = Callable[[Any, str], Any]  # (value, where) -> the value kept; refuses otherwise

EARLIEST, LATEST = 0.0, 4_102_444_800.0  # 1970-01-01 .. 2100-01-01 UTC
MAX_COUNT = 2**53
MAX_TEXT = 1000  # characters of one string
MAX_NAME = 100  # characters of a key (a service's or a volume's name)
MAX_ITEMS = 64  # entries of a mapping or a short list
MAX_NAMES = 10_000  # entries of a list of package names
REASON_LIMIT = 200  # characters of an unhealthy agent's reason kept


def _refuse(where: str, what: str) -> NoReturn:
    raise ProviderError(f"the workspace agent's /status is malformed: {where} {what}")


def moment(value: Any, where: str) -> float | None:
    """A time (seconds since the epoch); None stays None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _refuse(where, "is not a time")
    if not math.isfinite(value) or not EARLIEST <= value <= LATEST:
        _refuse(where, "is not a time between 1970 and 2100")
    return float(value)


def count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        _refuse(where, "is not a count")
    return value


def exit_code(value: Any, where: str) -> int:
    """A process's exit code; negative for a signal."""
    if isinstance(value, bool) or not isinstance(value, int) or not -255 <= value <= 255:
        _refuse(where, "is not an exit code")
    return value


def amount(value: Any, where: str) -> float:
    """A non-negative finite number (seconds of uptime)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _refuse(where, "is not a number")
    if not math.isfinite(value) or not 0 <= value <= MAX_COUNT:
        _refuse(where, "is out of range")
    return value


def text(value: Any, where: str, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str) or len(value) > limit:
        _refuse(where, f"is not a string of at most {limit} characters")
    return value


def flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        _refuse(where, "is not true or false")
    return value


def optional(check: Check) -> Check:
    return lambda value, where: None if value is None else check(value, where)


def texts(limit: int = MAX_ITEMS) -> Check:
    """A list of at most ``limit`` strings."""

    def check(value: Any, where: str) -> list[str]:
        if not isinstance(value, list) or len(value) > limit:
            _refuse(where, f"is not a list of at most {limit} entries")
        return [text(item, f"{where}[{n}]") for n, item in enumerate(value)]

    return check


def record(fields: dict[str, Check]) -> Check:
    """An object with these fields (each optional); other keys are dropped."""

    def check(value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            _refuse(where, "is not an object")
        return {
            key: checker(value[key], f"{where}.{key}")
            for key, checker in fields.items()
            if key in value
        }

    return check


def mapping(entry: Check) -> Check:
    """An object of at most ``MAX_ITEMS`` named entries, each checked by ``entry``."""

    def check(value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict) or len(value) > MAX_ITEMS:
            _refuse(where, f"is not an object of at most {MAX_ITEMS} entries")
        return {
            text(key, f"{where} key", MAX_NAME): entry(item, f"{where}.{key[:MAX_NAME]}")
            for key, item in value.items()
        }

    return check


_SERVICE = record(
    {
        "state": text,
        "pid": optional(count),
        "restarts": count,
        "started_at": optional(moment),
        "last_exit_code": optional(exit_code),
        "message": text,
    }
)
_VOLUME = record(
    {
        "path": text,
        "fs_total_bytes": count,
        "fs_free_bytes": count,
        "used_bytes": count,
        "measured_at": moment,
        "quota_bytes": count,
        "quota_percent": count,
        "quota_level": text,
    }
)
_RESTORE = record(
    {
        "status": text,
        "attempt": count,
        "started_at": optional(moment),
        "finished_at": optional(moment),
        "progress": text,
        "release_changed": flag,
        "offline": texts(MAX_NAMES),
        "network": texts(MAX_NAMES),
        "missing": texts(MAX_NAMES),
        "downgraded": texts(MAX_NAMES),
        "errors": texts(),
    }
)
STATUS = record(
    {
        "agent": record(
            {
                "version": text,
                "started_at": moment,
                "uptime_s": amount,
                "environment_id": text,
                "pid": count,
            }
        ),
        "health": optional(lambda value, where: one_line(text(value, where))),
        "services": mapping(_SERVICE),
        "activity": record(
            {
                "ssh_sessions": count,
                "ide_connections": count,
                "last_ssh_at": optional(moment),
                "last_ide_at": optional(moment),
                "code_server_heartbeat_at": optional(moment),
                "last_activity_at": optional(moment),
            }
        ),
        "disk": mapping(_VOLUME),
        "ssh_host_keys": texts(),
        "warnings": texts(),
        "packages": record({"recorded": count, "running": flag, "restore": optional(_RESTORE)}),
        "password_generated": flag,
        "loopback_only": flag,
        "relays_open": count,
        "dotfiles": optional(
            record({"repo": text, "result": text, "finished_at": optional(moment), "log": text})
        ),
    }
)


def checked_status(answer: Any) -> dict[str, Any]:
    """The agent's ``/status`` answer (parsed JSON) as dev8 reads it; ``ProviderError``
    naming the first field that is not what the agent sends."""
    checked: dict[str, Any] = STATUS(answer, "status")
    return checked


def health_reason(answer: Any, http_status: int) -> str:
    """Why an agent that answered ``http_status`` to ``/health`` says it is unhealthy: its
    ``reason`` made one short printable line, else the HTTP status."""
    reason = answer.get("reason") if isinstance(answer, dict) else None
    if not isinstance(reason, str) or not reason:
        return f"HTTP {http_status}"
    return one_line(reason)


def one_line(reason: str) -> str:
    """``reason`` as one short printable line (it is shown as a workspace's message)."""
    printable = "".join(c if c.isprintable() else " " for c in reason[: REASON_LIMIT + 1])
    return printable[:REASON_LIMIT] + ("…" if len(reason) > REASON_LIMIT else "")
