"""TLS material for the local control plane, generated on this machine for each sandbox.

One CA signs the apiserver's serving certificate, the client certificates of the admin and
the control-plane components, and the serving certificates of kwok's kubelet endpoint and of
metrics-server; a separate RSA key pair signs service-account tokens. A second CA, the front
proxy's, signs only the client certificate the apiserver's aggregator presents to metrics-server
when it forwards a request there: metrics-server takes the caller's name from the request's
headers only from that certificate, as a kubeadm cluster keeps it.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from delivery.tls import CA_KEY_USAGE, subject_alt_names

VALIDITY = datetime.timedelta(days=365)
SERVICE_IP = "10.0.0.1"  # first address of the service range: the `kubernetes` Service
# The name the aggregator checks metrics-server's certificate against: `<service>.<namespace>.svc`
# of the Service its APIService names.
METRICS_SERVER_HOST = "metrics-server.kube-system.svc"
FRONT_PROXY_CLIENT = "front-proxy-client"  # the one name `--requestheader-allowed-names` admits


@dataclass(frozen=True)
class KeyPair:
    cert: Path
    key: Path


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write_key(key: rsa.RSAPrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    path.chmod(0o600)


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


def _builder(subject: x509.Name, issuer: x509.Name, key: rsa.RSAPrivateKey) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
    )


def _ca_pair(directory: Path) -> KeyPair:
    return KeyPair(directory / "ca.crt", directory / "ca.key")


@dataclass(frozen=True)
class Authority:
    """A CA on disk that issues the sandbox's certificates."""

    pair: KeyPair

    @classmethod
    def create(cls, directory: Path, common_name: str = "delivery-sandbox-ca") -> Authority:
        directory.mkdir(parents=True, exist_ok=True)
        key = _new_key()
        name = _name(common_name)
        cert = (
            _builder(name, name, key)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(CA_KEY_USAGE, critical=True)
            .sign(key, hashes.SHA256())
        )
        pair = _ca_pair(directory)
        pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key, pair.key)
        return cls(pair)

    @classmethod
    def load(cls, directory: Path) -> Authority:
        """The CA `create` made in `directory`, to issue more certificates once the sandbox runs."""
        return cls(_ca_pair(directory))

    def issue(
        self,
        directory: Path,
        stem: str,
        common_name: str,
        *,
        organization: str | None = None,
        hosts: tuple[str, ...] = (),
    ) -> KeyPair:
        """Issue a certificate: a server one when `hosts` are given, a client one otherwise."""
        ca_cert = x509.load_pem_x509_certificate(self.pair.cert.read_bytes())
        ca_key = serialization.load_pem_private_key(self.pair.key.read_bytes(), password=None)
        if not isinstance(ca_key, rsa.RSAPrivateKey):
            raise TypeError(f"{self.pair.key} does not hold an RSA key")
        key = _new_key()
        usage = ExtendedKeyUsageOID.SERVER_AUTH if hosts else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = _builder(_name(common_name, organization), ca_cert.subject, key).add_extension(
            x509.ExtendedKeyUsage([usage]), critical=False
        )
        if hosts:
            builder = builder.add_extension(subject_alt_names(hosts), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        pair = KeyPair(directory / f"{stem}.crt", directory / f"{stem}.key")
        pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key, pair.key)
        return pair


@dataclass(frozen=True)
class ClusterPki:
    """Every file the control plane's flags point at."""

    ca: KeyPair
    apiserver: KeyPair
    admin: KeyPair
    service_account_key: Path
    service_account_pub: Path
    front_proxy_ca: KeyPair
    front_proxy_client: KeyPair
    kwok: KeyPair
    metrics_server: KeyPair

    @classmethod
    def create(cls, directory: Path) -> ClusterPki:
        directory.mkdir(parents=True, exist_ok=True)
        authority = Authority.create(directory)
        authority.issue(
            directory,
            "apiserver",
            "kube-apiserver",
            hosts=("127.0.0.1", "localhost", SERVICE_IP, "kubernetes", "kubernetes.default.svc"),
        )
        authority.issue(directory, "admin", "delivery-sandbox-admin", organization="system:masters")
        # What metrics-server dials for each node: kwok's endpoint on the nodes' InternalIP.
        authority.issue(directory, "kwok", "kwok-kubelet", hosts=("127.0.0.1", "localhost"))
        authority.issue(
            directory,
            "metrics-server",
            "metrics-server",
            hosts=(METRICS_SERVER_HOST, "127.0.0.1", "localhost"),
        )
        front_proxy = Authority.create(directory / "front-proxy", "delivery-sandbox-front-proxy-ca")
        front_proxy.issue(directory / "front-proxy", "client", FRONT_PROXY_CLIENT)
        pki = cls.load(directory)
        sa_key = _new_key()
        _write_key(sa_key, pki.service_account_key)
        pki.service_account_pub.write_bytes(
            sa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        return pki

    @classmethod
    def load(cls, directory: Path) -> ClusterPki:
        """The files `create` made in `directory`: a component started again gets the same ones."""
        return cls(
            _ca_pair(directory),
            KeyPair(directory / "apiserver.crt", directory / "apiserver.key"),
            KeyPair(directory / "admin.crt", directory / "admin.key"),
            directory / "sa.key",
            directory / "sa.pub",
            _ca_pair(directory / "front-proxy"),
            KeyPair(directory / "front-proxy" / "client.crt", directory / "front-proxy" / "client.key"),
            KeyPair(directory / "kwok.crt", directory / "kwok.key"),
            KeyPair(directory / "metrics-server.crt", directory / "metrics-server.key"),
        )
