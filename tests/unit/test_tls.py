"""The generated CA signs a serving certificate for exactly the hosts asked for."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

from cryptography import x509

from delivery.tls import LOCAL_HOSTS, self_signed, service_hosts


def test_the_certificate_names_every_host_and_is_signed_by_the_ca(tmp_path: Path) -> None:
    hosts = (*LOCAL_HOSTS, *service_hosts("delivery-webhook", "delivery-system"))
    material = self_signed(hosts)
    ca = x509.load_pem_x509_certificate(material.ca)
    certificate = x509.load_pem_x509_certificate(material.certificate)
    certificate.verify_directly_issued_by(ca)
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert names.get_values_for_type(x509.DNSName) == [
        "localhost",
        "delivery-webhook",
        "delivery-webhook.delivery-system",
        "delivery-webhook.delivery-system.svc",
        "delivery-webhook.delivery-system.svc.cluster.local",
    ]
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca

    cert_file, key_file = material.write(tmp_path)
    assert cert_file.read_bytes() == material.certificate
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
