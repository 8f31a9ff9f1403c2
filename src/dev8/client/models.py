"""The high-level SDK: models you can hold (``Workspace``, ``Operation``...) grouped in
collections (``client.workspaces.get(name)``), as in docker-py. A model keeps the API's
answer in ``attrs`` and has ``reload()``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from dev8.client.api import APIClient
from dev8.core import workspace as core
from dev8.core.errors import ERRORS_BY_CODE, Dev8Error, OperationTimeout
from dev8.core.resources import Resources
from dev8.core.states import DesiredState, ObservedState

if TYPE_CHECKING:
    from dev8.client.tunnel import Tunnel

Progress = Callable[[str], None]
API = "/api/v1"


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


class HasAPI(Protocol):
    """What a ``dev8.client.Client`` is to a model: the holder of an ``APIClient``."""

    api: APIClient


def _api(client: APIClient | HasAPI) -> APIClient:
    return client if isinstance(client, APIClient) else client.api


class Model:
    """One resource: the API's answer in ``attrs``, and its calls through ``client`` (the
    ``APIClient``; a ``Client`` is taken too)."""

    def __init__(self, client: APIClient | HasAPI, attrs: dict[str, Any]) -> None:
        self.client = _api(client)
        self.attrs = attrs

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.attrs.get('name') or self.attrs.get('id')}>"


# Operations ------------------------------------------------------------------------------
class Operation(Model):
    @property
    def id(self) -> str:
        return self.attrs["id"]

    @property
    def result(self) -> str:
        return self.attrs["result"]

    @property
    def finished(self) -> bool:
        return self.result not in core.UNFINISHED

    def reload(self) -> Operation:
        self.attrs = self.client.json("GET", f"{API}/operations/{self.id}")
        return self

    def events(self, after: int = 0) -> list[dict[str, Any]]:
        return self.client.json(
            "GET", f"{API}/operations/{self.id}/events", params={"after": after}
        )

    def wait(
        self, progress: Progress | None = None, timeout: float = 900.0, poll: float = 0.25
    ) -> Operation:
        """Follow the operation until it finishes, passing each progress message to
        ``progress``; raise its error (the same class as in local mode) if it failed."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for event in self.events(after=seen):
                seen = event["seq"]
                if progress:
                    progress(event["message"])
            self.reload()
            if self.finished:
                for event in self.events(after=seen):
                    if progress:
                        progress(event["message"])
                break
            if time.monotonic() > deadline:
                raise OperationTimeout(
                    f"operation {self.id} ({self.attrs['action']}) is still {self.result} "
                    f"after {timeout:.0f} s"
                )
            time.sleep(poll)
        if self.result == core.FAILED:
            code = (self.attrs.get("outcome") or {}).get("error", "error")
            raise ERRORS_BY_CODE.get(code, Dev8Error)(self.attrs["message"])
        return self

    def to_operation(self) -> core.Operation:
        a = self.attrs
        return core.Operation(
            id=a["id"],
            workspace_id=a.get("workspace_id"),
            action=a["action"],
            actor=a["actor"],
            started_at=_time(a["started_at"]),  # type: ignore[arg-type]
            result=a["result"],
            message=a["message"],
            finished_at=_time(a.get("finished_at")),
            owner=a.get("owner", ""),
            workspace_name=a.get("workspace", ""),
            outcome=a.get("outcome") or {},
            attempts=a.get("attempts", 0),
        )


class OperationCollection:
    def __init__(self, client: APIClient) -> None:
        self.client = client

    def get(self, operation_id: str) -> Operation:
        return Operation(self.client, self.client.json("GET", f"{API}/operations/{operation_id}"))


# Workspaces ------------------------------------------------------------------------------
class Change:
    """What a change answered: the workspace as recorded and the operations queued."""

    def __init__(self, client: APIClient, attrs: dict[str, Any]) -> None:
        self.workspace = Workspace(client, attrs["workspace"])
        self.operations = [Operation(client, op) for op in attrs["operations"]]

    def wait(self, progress: Progress | None = None, timeout: float = 900.0) -> Workspace:
        """Wait for every queued operation in turn; returns the workspace as it then is
        (None attrs once purged)."""
        for operation in self.operations:
            operation.wait(progress, timeout)
        if any(op.attrs["action"] == "purge" for op in self.operations):
            return self.workspace
        return self.workspace.reload()


class Workspace(Model):
    @property
    def name(self) -> str:
        return self.attrs["name"]

    @property
    def id(self) -> str:
        return self.attrs["id"]

    @property
    def owner(self) -> str:
        return self.attrs["owner"]

    @property
    def state(self) -> str:
        return self.attrs["state"]

    @property
    def _path(self) -> str:
        return f"{API}/workspaces/{self.name}"

    @property
    def _owner(self) -> dict[str, str]:
        return {"owner": self.owner}

    def reload(self) -> Workspace:
        self.attrs = self.client.json("GET", self._path, params=self._owner)
        return self

    def _change(self, method: str, path: str = "", **kwargs: Any) -> Change:
        params = {**self._owner, **kwargs.pop("params", {})}
        answer = self.client.json(method, self._path + path, params=params, **kwargs)
        return Change(self.client, answer)

    def start(self) -> Change:
        return self._change("POST", "/start")

    def stop(self) -> Change:
        return self._change("POST", "/stop")

    def restart(self) -> Change:
        return self._change("POST", "/restart")

    def rebuild(self, image: str | None = None) -> Change:
        return self._change("POST", "/rebuild", json={"image": image} if image else None)

    def remove(self, purge: bool = False) -> Change:
        return self._change("DELETE", params={"purge": str(purge).lower()})

    def update(self, **fields: Any) -> Change:
        """Change ``cpus``, ``memory_mb``, ``idle_timeout_s`` (None: the server's default)
        or ``ide_password``."""
        return self._change("PATCH", json=fields)

    def history(self, limit: int = 50) -> list[Operation]:
        answer = self.client.json(
            "GET", self._path + "/operations", params={**self._owner, "limit": limit}
        )
        return [Operation(self.client, op) for op in answer]

    def volumes(self) -> list[dict[str, Any]]:
        return self.client.json("GET", self._path + "/volumes", params=self._owner)

    def agent_status(self) -> dict[str, Any]:
        return self.client.json("GET", self._path + "/status", params=self._owner)

    def open_tunnel(self, port: int) -> Tunnel:
        """A byte stream to ``port`` inside this workspace (see ``Client.open_tunnel``)."""
        from dev8.client.tunnel import open_tunnel  # websockets only when used

        return open_tunnel(self.client, self.name, port, self.owner)

    def logs(self, tail: int = 200) -> str:
        params = {**self._owner, "tail": tail}
        return self.client.request("GET", self._path + "/logs", params=params).text

    # Backups and snapshots, made and kept by the server --------------------------------
    def backup(self, volume: str = "all", format: str = "tar.zst", stop: bool = False) -> Change:
        """Queue a backup; once done, its operation's ``outcome`` names it (``backup_id``)."""
        body = {"volume": volume, "format": format, "stop": stop}
        return self._change("POST", "/backups", json=body)

    def backups(self) -> list[dict[str, Any]]:
        return self.client.json("GET", self._path + "/backups", params=self._owner)

    def download_archive(self, backup_id: str, file: str, destination: Path) -> Path:
        """Save one archive of a kept backup as ``destination`` (never over an existing
        file)."""
        path = f"{self._path}/backups/{backup_id}/{file}"
        return self.client.download(path, destination, params=self._owner)

    def delete_backup(self, backup_id: str) -> None:
        self.client.request("DELETE", f"{self._path}/backups/{backup_id}", params=self._owner)

    def restore_backup(self, backup_id: str, volume: str = "all") -> Change:
        return self._change("POST", f"/backups/{backup_id}/restore", json={"volume": volume})

    def snapshot(self, **retention: int | None) -> Change:
        """Queue a snapshot; ``keep_last``, ``keep_daily``, ``keep_weekly`` prune after."""
        body = {key: value for key, value in retention.items() if value is not None}
        return self._change("POST", "/snapshots", json=body)

    def snapshots(self) -> list[dict[str, Any]]:
        return self.client.json("GET", self._path + "/snapshots", params=self._owner)

    def restore_snapshot(self, snapshot_id: str, volume: str = "all") -> Change:
        return self._change("POST", f"/snapshots/{snapshot_id}/restore", json={"volume": volume})

    def to_workspace(self) -> core.Workspace:
        """As a ``dev8.core`` record (secret values are never sent: names only)."""
        a = self.attrs
        return core.Workspace(
            id=a["id"],
            name=a["name"],
            owner=a["owner"],
            image_ref=a["image"],
            image_id=a["image_id"],
            resources=Resources(a["cpus"], a["memory_mb"]),
            env=dict(a.get("env") or {}),
            secrets={key: "" for key in a.get("secret_names", [])},
            desired_state=DesiredState(a["desired_state"]),
            observed_state=ObservedState(a["state"]),
            status_message=a.get("message", ""),
            ports=dict(a.get("ports") or {}),
            idle_timeout_s=a.get("idle_timeout_s"),
            dotfiles_repo=a.get("dotfiles_repo"),
            last_activity_at=_time(a.get("last_activity_at")),
            created_at=_time(a.get("created_at")),
            updated_at=_time(a.get("updated_at")),
        )


class WorkspaceCollection:
    def __init__(self, client: APIClient) -> None:
        self.client = client

    def get(self, name: str, owner: str | None = None) -> Workspace:
        params = {"owner": owner} if owner else {}
        return Workspace(
            self.client, self.client.json("GET", f"{API}/workspaces/{name}", params=params)
        )

    def list(self, **filters: Any) -> list[Workspace]:
        """Every workspace matching ``owner``, ``state``, ``desired_state``,
        ``name_prefix``, ``include_removed``, fetched a page at a time."""
        return list(self.iter(**filters))

    def iter(self, page_size: int = 200, **filters: Any) -> Iterator[Workspace]:
        params = {key: value for key, value in filters.items() if value is not None}
        params["limit"] = page_size
        while True:
            page = self.client.json("GET", f"{API}/workspaces", params=params)
            for attrs in page["items"]:
                yield Workspace(self.client, attrs)
            if not page["next"]:
                return
            params["after"] = page["next"]

    def create(self, name: str, owner: str | None = None, **fields: Any) -> Change:
        """Create ``name`` (and start it unless ``start=False``). Fields as in the API:
        ``image``, ``size``, ``cpus``, ``memory_mb``, ``env``, ``secrets``,
        ``ide_password``, ``idle_timeout_s``, ``ide_port``, ``ssh_port``."""
        params = {"owner": owner} if owner else {}
        body = {"name": name, **{k: v for k, v in fields.items() if v is not None}}
        return Change(
            self.client, self.client.json("POST", f"{API}/workspaces", json=body, params=params)
        )


# Users and tokens ------------------------------------------------------------------------
class User(Model):
    @property
    def name(self) -> str:
        return self.attrs["name"]

    def reload(self) -> User:
        self.attrs = self.client.json("GET", f"{API}/users/{self.name}")
        return self

    @property
    def disabled(self) -> bool:
        return bool(self.attrs.get("disabled"))

    def update(self, **fields: Any) -> User:
        """Change ``password`` (with ``current_password`` for your own), ``role`` (admins)
        or ``ssh_keys``."""
        self.attrs = self.client.json("PATCH", f"{API}/users/{self.name}", json=fields)
        return self

    def disable(self) -> User:
        """Refuse their tokens, sessions and sign-ins, and stop their running workspaces
        (admins; not yourself, nor the last enabled admin)."""
        return self.update(disabled=True)

    def enable(self) -> User:
        """Let them in again (admins); their workspaces stay as they are."""
        return self.update(disabled=False)

    def remove(self) -> None:
        self.client.request("DELETE", f"{API}/users/{self.name}")


class UserCollection:
    def __init__(self, client: APIClient) -> None:
        self.client = client

    def me(self) -> User:
        return User(self.client, self.client.json("GET", f"{API}/users/me"))

    def get(self, name: str) -> User:
        return User(self.client, self.client.json("GET", f"{API}/users/{name}"))

    def list(self) -> list[User]:
        return [User(self.client, a) for a in self.client.json("GET", f"{API}/users")]

    def create(self, name: str, password: str, role: str = "member") -> User:
        body = {"name": name, "password": password, "role": role}
        return User(self.client, self.client.json("POST", f"{API}/users", json=body))


class Token(Model):
    @property
    def id(self) -> str:
        return self.attrs["id"]

    def revoke(self) -> None:
        self.client.request("DELETE", f"{API}/tokens/{self.id}")


class TokenCollection:
    def __init__(self, client: APIClient) -> None:
        self.client = client

    def list(self, user: str | None = None) -> list[Token]:
        params = {"user": user} if user else {}
        return [
            Token(self.client, a) for a in self.client.json("GET", f"{API}/tokens", params=params)
        ]

    def create(self, name: str, expires_in_days: int | None = None) -> Token:
        """A new token; its ``attrs["token"]`` is the only time the token is shown."""
        body: dict[str, Any] = {"name": name}
        if expires_in_days is not None:
            body["expires_in_days"] = expires_in_days
        return Token(self.client, self.client.json("POST", f"{API}/tokens", json=body))

    def revoke_current(self) -> None:
        self.client.request("DELETE", f"{API}/tokens/current")
