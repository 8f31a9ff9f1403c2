"""The create form's fields as a ``CreateRequest``: pure, checked as the API checks its body
(a name the service validates, a preset of ``dev8.core.resources``, an image from the
admin's list, an idle timeout in minutes, a dotfiles repository, secrets as name/value rows)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dev8.core.errors import InvalidInput
from dev8.core.resources import DEFAULT_PRESET, PRESETS
from dev8.core.workspace import CreateRequest
from dev8.server.schemas import check_env_keys
from dev8.service.requests import check_idle_timeout

SECRET_ROWS = 3  # empty rows the form shows; "Add a secret" adds more
MAX_SECRETS = 50


@dataclass(frozen=True)
class CreateFields:
    """What the form sent, as strings (what it shows again after an error: never a
    secret's value)."""

    name: str = ""
    size: str = DEFAULT_PRESET
    image: str = ""
    idle_minutes: str = ""
    dotfiles: str = ""  # blank: the account's repository
    secret_names: tuple[str, ...] = ()
    secret_values: tuple[str, ...] = ()


def fields_of(form: Mapping[str, str], names: Sequence[str], values: Sequence[str]) -> CreateFields:
    return CreateFields(
        name=form.get("name", "").strip(),
        size=form.get("size", DEFAULT_PRESET),
        image=form.get("image", ""),
        idle_minutes=form.get("idle_minutes", "").strip(),
        dotfiles=form.get("dotfiles", "").strip(),
        secret_names=tuple(names),
        secret_values=tuple(values),
    )


def create_request(fields: CreateFields, images: Sequence[str]) -> CreateRequest:
    """The request ``fields`` describe; ``InvalidInput`` with one line if they do not."""
    if fields.size not in PRESETS:
        raise InvalidInput(f"unknown size {fields.size!r}; choose one of {', '.join(PRESETS)}")
    image = fields.image or images[0]
    if image not in images:
        raise InvalidInput(f"image {image!r} is not offered here; choose one of the list")
    secrets = secrets_of(fields.secret_names, fields.secret_values)
    return CreateRequest(
        name=fields.name,
        image=image,
        resources=PRESETS[fields.size],
        secrets=secrets,
        idle_timeout_s=idle_timeout(fields.idle_minutes),
        dotfiles_repo=fields.dotfiles or None,  # checked by the service, as the API's
    )


def idle_timeout(minutes: str) -> int | None:
    """Seconds, from whole minutes; blank means the server's default, 0 never."""
    if not minutes:
        return None
    if not minutes.isdigit():
        raise InvalidInput(f"idle timeout {minutes[:20]!r} is not a whole number of minutes")
    return check_idle_timeout(int(minutes) * 60)


def secrets_of(names: Sequence[str], values: Sequence[str]) -> dict[str, str]:
    """Name/value rows as secrets; blank rows skipped, a value without a name refused."""
    secrets: dict[str, str] = {}
    for name, value in zip(names, values, strict=False):
        name = name.strip()
        if not name and not value:
            continue
        if not name:
            raise InvalidInput("a secret has a value but no name; name it or clear it")
        if name in secrets:
            raise InvalidInput(f"secret {name} is given twice")
        secrets[name] = value
    if len(secrets) > MAX_SECRETS:
        raise InvalidInput(f"at most {MAX_SECRETS} secrets per workspace")
    check_env_keys(secrets)
    return secrets
