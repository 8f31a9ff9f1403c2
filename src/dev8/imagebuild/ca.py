"""The extra-CA option: certificates added to every image layer's trust store."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from dev8.core.errors import InvalidInput

_PEM_CERT = re.compile(
    r"-----BEGIN CERTIFICATE-----\r?\n.+?\r?\n-----END CERTIFICATE-----", re.DOTALL
)


def default_ca_bundle(env: Mapping[str, str] = os.environ) -> Path | None:
    """The bundle named by ``SSL_CERT_FILE`` or ``REQUESTS_CA_BUNDLE``, if either is set."""
    for key in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        if env.get(key):
            return Path(env[key])
    return None


def split_pem_bundle(text: str) -> list[str]:
    """Each certificate of a PEM bundle on its own: update-ca-certificates wants one per file."""
    return [match.group(0).replace("\r\n", "\n") + "\n" for match in _PEM_CERT.finditer(text)]


def read_ca_certificates(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        raise InvalidInput(f"cannot read the CA bundle {path}: {exc.strerror}") from None
    certificates = split_pem_bundle(text)
    if not certificates:
        raise InvalidInput(f"{path} holds no PEM certificate; pass a PEM bundle to --extra-ca")
    return certificates


def write_ca_directory(certificates: list[str], target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for index, pem in enumerate(certificates):
        (target / f"extra-{index:03d}.crt").write_text(pem)
