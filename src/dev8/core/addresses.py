"""Where members reach a workspace through `dev8 server`. Pure.

Path mode, always: ``{server}/@{owner}/{name}/``. Subdomain mode, when the server has an apps
domain (a wildcard DNS name): ``{name}--{owner}.{apps domain}`` for the IDE and
``{name}--{owner}--{port}.{apps domain}`` for a port, each its own origin. A name or owner that
is not a plain DNS label, or holds the separator, has no subdomain (path mode still works).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

SEPARATOR = "--"
IDE_PORT = 8080
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
MAX_LABEL = 63


@dataclass(frozen=True)
class AppTarget:
    """What an app host names: a workspace's IDE (``port`` None) or one of its ports."""

    name: str
    owner: str
    port: int | None = None


def app_label(target: AppTarget) -> str | None:
    """The DNS label of ``target``, or None if its name or owner cannot be in one."""
    parts = [target.name, target.owner]
    if any(SEPARATOR in part or not _LABEL.match(part) for part in parts):
        return None
    if target.port is not None:
        parts.append(str(target.port))
    label = SEPARATOR.join(parts)
    return label if len(label) <= MAX_LABEL else None


def parse_app_host(host: str, apps_domain: str) -> AppTarget | None:
    """The target an app host names (``host`` may carry a port), or None if ``host`` is not
    one: another domain, a nested subdomain, a bad port or a label ``app_label`` never makes."""
    hostname, colon, port_text = host.partition(":")
    if colon and not (port_text.isascii() and port_text.isdigit() and len(port_text) <= 5):
        return None  # a Host is a name and an optional port, nothing else
    hostname, domain = hostname.lower().rstrip("."), apps_domain.lower().strip(".")
    label, dot, rest = hostname.partition(".")
    if not dot or rest != domain:
        return None
    parts = label.split(SEPARATOR)
    if len(parts) not in (2, 3):
        return None
    port = None
    if len(parts) == 3:
        if not parts[2].isdigit() or parts[2].startswith("0"):
            return None
        port = int(parts[2])
        if not 1 <= port <= 65535:
            return None
    target = AppTarget(parts[0], parts[1], port)
    return target if app_label(target) == label else None


@dataclass(frozen=True)
class Addresses:
    """The public addresses of one server: ``base_url`` as members reach it (scheme, host,
    port, no trailing slash) and its apps domain, if any."""

    base_url: str
    apps_domain: str | None = None

    @property
    def scheme(self) -> str:
        return urlsplit(self.base_url).scheme or "http"

    def _app_url(self, target: AppTarget) -> str | None:
        label = app_label(target) if self.apps_domain else None
        if label is None:
            return None
        port = urlsplit(self.base_url).port
        suffix = f":{port}" if port else ""
        return f"{self.scheme}://{label}.{self.apps_domain}{suffix}/"

    def ide(self, owner: str, name: str) -> str:
        """The IDE's address: its own origin in subdomain mode, else under the server."""
        return self._app_url(AppTarget(name, owner)) or self.ide_path(owner, name)

    def ide_path(self, owner: str, name: str) -> str:
        return f"{self.base_url}/@{owner}/{name}/"

    def port(self, owner: str, name: str, port: int) -> str | None:
        """A port's own address; None without subdomain mode."""
        return self._app_url(AppTarget(name, owner, port))

    def port_template(self, owner: str, name: str) -> str:
        """``VSCODE_PROXY_URI`` for code-server's Ports view: ``{{port}}`` is filled by it.
        Without subdomains, code-server's own path proxy under the IDE's path."""
        label = app_label(AppTarget(name, owner)) if self.apps_domain else None
        if label is None:
            return self.ide_path(owner, name) + "proxy/{{port}}/"
        port = urlsplit(self.base_url).port
        suffix = f":{port}" if port else ""
        return f"{self.scheme}://{label}{SEPARATOR}{{{{port}}}}.{self.apps_domain}{suffix}/"
