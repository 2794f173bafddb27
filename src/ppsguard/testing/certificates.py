"""Test certificates: build one (self-signed, or naming another issuer) and write it as PEM.

For TLS tests that need an expired, self-signed or oddly named certificate without touching the
network or a CA. Shipped with the package like the lab, so users' own tests can use it too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def build_certificate(
    *,
    common_name: str,
    not_before: dt.datetime,
    not_after: dt.datetime,
    issuer_cn: str | None = None,
    sans: Sequence[str] = (),
    serial: int | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A certificate for `common_name` signed by its own key (named `issuer_cn` if given)."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(issuer_cn or common_name))
        .public_key(key.public_key())
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    if sans:
        names = [x509.DNSName(san) for san in sans]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(key, hashes.SHA256()), key


def write_pem(
    certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey, directory: Path
) -> tuple[Path, Path]:
    """Write `cert.pem` and `key.pem` into `directory`; return their paths."""
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def self_signed_pem(
    directory: Path, *, common_name: str, expired: bool, sans: Sequence[str] = ()
) -> tuple[Path, Path]:
    """A self-signed certificate valid for 30 days from yesterday, or expired since yesterday."""
    now = dt.datetime.now(dt.UTC)
    day = dt.timedelta(days=1)
    start, end = (now - 30 * day, now - day) if expired else (now - day, now + 30 * day)
    certificate, key = build_certificate(
        common_name=common_name, not_before=start, not_after=end, sans=sans
    )
    return write_pem(certificate, key, directory)
