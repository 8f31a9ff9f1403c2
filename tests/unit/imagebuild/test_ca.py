from pathlib import Path

import pytest

from dev8.core.errors import InvalidInput
from dev8.imagebuild.ca import (
    default_ca_bundle,
    read_ca_certificates,
    split_pem_bundle,
    write_ca_directory,
)

CERT = "-----BEGIN CERTIFICATE-----\nMIIBAAAA\nBBBB\n-----END CERTIFICATE-----"


def test_bundle_is_split_into_single_certificates():
    bundle = f"# Root A\n{CERT}\n\n# Root B\r\n{CERT.replace('BBBB', 'CCCC')}\r\n"
    certs = split_pem_bundle(bundle)
    assert len(certs) == 2
    assert "CCCC" in certs[1] and "\r" not in certs[1]
    assert all(c.startswith("-----BEGIN") and c.endswith("-----\n") for c in certs)


def test_default_bundle_follows_ssl_cert_file_then_requests():
    assert default_ca_bundle({"SSL_CERT_FILE": "/a", "REQUESTS_CA_BUNDLE": "/b"}) == Path("/a")
    assert default_ca_bundle({"REQUESTS_CA_BUNDLE": "/b"}) == Path("/b")
    assert default_ca_bundle({}) is None


def test_files_without_certificates_are_refused(tmp_path):
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    with pytest.raises(InvalidInput):
        read_ca_certificates(bad)
    with pytest.raises(InvalidInput):
        read_ca_certificates(tmp_path / "missing.pem")


def test_directory_has_one_crt_per_certificate(tmp_path):
    write_ca_directory([CERT + "\n", CERT + "\n"], tmp_path / "ca")
    assert sorted(p.name for p in (tmp_path / "ca").iterdir()) == ["extra-000.crt", "extra-001.crt"]
