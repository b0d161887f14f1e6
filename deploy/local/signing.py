"""The local test certification authority and the certificates that sign apology letters
(Mẫu 04, PAdES): one per unit of the catalog, signed for by its head, and one for the city,
which issues a letter on a unit's behalf when the unit let the due date pass. A test CA only:
production uses the units' certificates from the government CA (Ban Cơ yếu Chính phủ).

Idempotent: what exists is kept, what is missing is created, under .run/signing/ (git-ignored):

    ca.pem, ca.key.pem                       the test CA (the trust root validators use)
    signers/<unit code>/{cert,key}.pem       a unit's signing certificate and key
    signers/city/{cert,key}.pem              the city's

    python -m deploy.local.signing [DIRECTORY]   # `make infra`, the stack and tests run it
"""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from shared.catalog import load_catalog
from shared.settings import DEFAULT_CATALOG

ROOT = Path(__file__).resolve().parents[2]
SIGNING_DIR = ROOT / ".run" / "signing"
CITY = "city"
CITY_NAME = "Ủy ban nhân dân Thành phố Hồ Chí Minh"
# Long-lived: the demo and the tests sign at simulated times, validators check at real ones.
VALID_FROM = datetime(2020, 1, 1, tzinfo=UTC)
VALID_UNTIL = datetime(2045, 1, 1, tzinfo=UTC)


def ensure(directory: Path = SIGNING_DIR, catalog_path: Path = DEFAULT_CATALOG) -> Path:
    """The CA and a certificate for every unit of the catalog and for the city; returns
    `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    signers = {unit.code: unit.name for unit in load_catalog(catalog_path).units}
    signers[CITY] = CITY_NAME
    with _locked(directory / ".lock"):
        ca_cert, ca_key = _certificate_authority(directory)
        for code, name in signers.items():
            folder = directory / "signers" / code
            if not (folder / "cert.pem").exists():
                _issue(folder, code, name, ca_cert, ca_key)
    return directory


def _certificate_authority(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert_file, key_file = directory / "ca.pem", directory / "ca.key.pem"
    if cert_file.exists() and key_file.exists():
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return x509.load_pem_x509_certificate(cert_file.read_bytes()), key
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("Onestop local test CA (not for production)", "test-ca")
    cert = (
        _builder(name, name, key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(key_file, _private_pem(key))
    _write(cert_file, cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _issue(
    folder: Path,
    code: str,
    name: str,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        _builder(_name(name, code), ca_cert.subject, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,  # non-repudiation: a signature on a letter
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    _write(folder / "key.pem", _private_pem(key))
    _write(folder / "cert.pem", cert.public_bytes(serialization.Encoding.PEM))


def _name(common_name: str, unit_code: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, CITY_NAME),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit_code),
            x509.NameAttribute(NameOID.COMMON_NAME, _at_most_64_bytes(common_name)),
        ]
    )


def _at_most_64_bytes(text: str) -> str:
    """X.509's upper bound for a common name, counted in UTF-8 bytes."""
    while len(text.encode()) > 64:
        text = text[:-1]
    return text.rstrip()


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(VALID_FROM)
        .not_valid_after(VALID_UNTIL)
    )


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes) -> None:
    """Whole or not at all (a rename), readable by the owner only (keys)."""
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_bytes(data)
    partial.chmod(0o600)
    os.replace(partial, path)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Several test sessions or services may start at once: one creates, the others wait."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


if __name__ == "__main__":
    print(ensure(Path(sys.argv[1]) if len(sys.argv) > 1 else SIGNING_DIR))
