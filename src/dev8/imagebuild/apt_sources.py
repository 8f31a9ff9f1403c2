"""Reading the host's apt sources to find the Debian mirror to bootstrap from. Pure."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AptSource:
    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]


def parse_one_line_sources(text: str) -> list[AptSource]:
    """``deb [options] URI SUITE COMPONENT...`` lines of a sources.list."""
    sources = []
    for raw in text.splitlines():
        words = raw.split("#", 1)[0].split()
        if len(words) < 3 or words[0] != "deb":
            continue
        words = words[1:]
        if words[0].startswith("["):
            while words and not words[0].endswith("]"):
                words.pop(0)
            words = words[1:]
        if len(words) >= 2:
            sources.append(AptSource(words[0], (words[1],), tuple(words[2:])))
    return sources


def parse_deb822_sources(text: str) -> list[AptSource]:
    """Stanzas of a ``.sources`` file; disabled stanzas and ``deb-src`` are skipped."""
    sources = []
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, value = line.split(":", 1)
            fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes") == "no":
            continue
        for uri in fields.get("uris", "").split():
            sources.append(
                AptSource(
                    uri,
                    tuple(fields.get("suites", "").split()),
                    tuple(fields.get("components", "").split()),
                )
            )
    return sources


def mirror_for(sources: list[AptSource], suite: str) -> str | None:
    """The first plain-HTTP(S) mirror that serves ``suite`` with component ``main``."""
    for source in sources:
        if suite in source.suites and "main" in source.components and source.uri.startswith("http"):
            return source.uri.rstrip("/")
    return None


def render_debian_sources(mirror: str, security_mirror: str | None, suite: str) -> str:
    """The deb822 sources for a bootstrapped image: release, updates and security."""
    stanzas = [
        f"Types: deb\nURIs: {mirror}\nSuites: {suite} {suite}-updates\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    ]
    if security_mirror:
        stanzas.append(
            f"Types: deb\nURIs: {security_mirror}\nSuites: {suite}-security\nComponents: main\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        )
    return "\n".join(stanzas)
