"""A CA and a serving certificate made on the spot, for when no certificate is mounted.

The apiserver calls the conversion webhook over HTTPS only, and checks the server's certificate
against the `caBundle` in the CRD. A controller without a mounted certificate makes its own CA,
serves with a certificate that CA signed, and writes the CA into the CRDs it serves; nothing
outside the process needs to exist. ECDSA P-256 keys: generated in a millisecond, accepted by Go.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=365)
LOCAL_HOSTS = ("127.0.0.1", "localhost")
CA_KEY_USAGE = x509.KeyUsage(  # what a CA's certificate may sign, for every CA made here
    digital_signature=True,
    key_cert_sign=True,
    crl_sign=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    encipher_only=False,
    decipher_only=False,
)


def service_hosts(name: str, namespace: str) -> tuple[str, ...]:
    """Every DNS name the apiserver may use for a Service."""
    return (name, f"{name}.{namespace}", f"{name}.{namespace}.svc", f"{name}.{namespace}.svc.cluster.local")


@dataclass(frozen=True)
class ServingCertificate:
    """PEM-encoded: the CA (for `caBundle`), and the server's certificate and key."""

    ca: bytes
    certificate: bytes
    key: bytes

    @classmethod
    def read(cls, directory: Path) -> ServingCertificate:
        """A certificate mounted from a Secret (`ca.crt`, `tls.crt`, `tls.key`, as cert-manager and
        the Helm chart write it): every replica behind one Service must serve under the same CA.

        In a Secret's volume the three files are links into `..data`, a link the kubelet swaps to
        update them all at once: read through it once resolved, the three come from one version
        (one that has just been removed is an OSError, and read again later)."""
        data = directory / "..data"
        if data.is_symlink():
            directory = data.resolve()
        ca, certificate, key = ((directory / name).read_bytes() for name in ("ca.crt", "tls.crt", "tls.key"))
        return cls(ca=ca, certificate=certificate, key=key)

    def write(self, directory: Path) -> tuple[Path, Path]:
        """Write the certificate and key where `ssl.SSLContext.load_cert_chain` can read them."""
        directory.mkdir(parents=True, exist_ok=True)
        certificate, key = directory / "tls.crt", directory / "tls.key"
        certificate.write_bytes(self.certificate)
        key.touch(mode=0o600, exist_ok=True)
        key.chmod(0o600)  # before the key is in it, also when the file was already there
        key.write_bytes(self.key)
        return certificate, key


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _alt_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def subject_alt_names(hosts: Sequence[str]) -> x509.SubjectAlternativeName:
    """The names a server certificate is valid for: IP addresses as such, anything else as DNS."""
    return x509.SubjectAlternativeName([_alt_name(host) for host in hosts])


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def self_signed(hosts: Sequence[str], *, common_name: str = "delivery-webhook") -> ServingCertificate:
    """A new CA and a certificate it signed for `hosts` (IP addresses or DNS names)."""
    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(minutes=5), now + VALIDITY  # tolerate a clock a little behind
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(f"{common_name}-ca")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(CA_KEY_USAGE, critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(subject_alt_names(hosts), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return ServingCertificate(
        ca=ca.public_bytes(serialization.Encoding.PEM),
        certificate=certificate.public_bytes(serialization.Encoding.PEM),
        key=_pem(key),
    )
