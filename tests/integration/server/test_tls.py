"""`dev8 server --tls-cert/--tls-key`: HTTPS with the operator's certificate, and clear
refusals of a half or unreadable TLS configuration. A real server process; no engine."""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.net import free_port


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dev8 test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "server.crt", directory / "server.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def server_env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "DEV8_HOME": str(tmp_path / "home"), "DEV8_SERVER_DIR": str(tmp_path)}


def test_the_server_answers_over_https_with_the_given_certificate(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    port = free_port()
    argv = [sys.executable, "-m", "dev8", "server", "--dev", "--port", str(port)]
    argv += ["--tls-cert", str(cert), "--tls-key", str(key)]
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(argv, env=server_env(tmp_path), stdout=log, stderr=log)
    try:
        trusting = ssl.create_default_context(cafile=str(cert))
        deadline, answer = time.monotonic() + 60, None
        while answer is None and time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            try:
                answer = httpx.get(f"https://127.0.0.1:{port}/healthz", verify=trusting)
            except httpx.TransportError:
                time.sleep(0.1)
        assert answer is not None and answer.status_code == 200
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    finally:
        process.terminate()
        process.wait(30)
        log.close()


@pytest.mark.parametrize("which", ["cert only", "unreadable key"])
def test_a_half_or_unreadable_tls_configuration_is_refused_in_one_line(
    tmp_path: Path, which: str
) -> None:
    cert, _ = self_signed(tmp_path)
    argv = [sys.executable, "-m", "dev8", "server", "--dev", "--port", str(free_port())]
    argv += ["--tls-cert", str(cert)]
    if which == "unreadable key":
        argv += ["--tls-key", str(tmp_path / "missing.key")]
    done = subprocess.run(
        argv, env=server_env(tmp_path), capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    expected = "go together" if which == "cert only" else "cannot read the TLS key"
    assert expected in done.stderr
