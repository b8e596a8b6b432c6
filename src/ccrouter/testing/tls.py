"""A throwaway certificate authority for the fakes' TLS (an https fake upstream behind a proxy)::

    tls = TestTLS.create()
    await fake.start(ssl=tls.server_context())   # https://127.0.0.1:port
    connector = aiohttp.TCPConnector(ssl=tls.client_context())

One self-signed certificate for ``127.0.0.1`` and ``localhost``, valid for a day, kept in memory
(the contexts load it from a temporary file, which ``ssl`` needs, deleted at once).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import tempfile
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["TestTLS"]


@dataclass(frozen=True, slots=True)
class TestTLS:
    """A certificate and its key, PEM-encoded."""

    __test__ = False  # not a pytest test class

    certificate: bytes
    key: bytes

    @classmethod
    def create(cls) -> TestTLS:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ccrouter test")])
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        return cls(
            certificate=certificate.public_bytes(serialization.Encoding.PEM),
            key=key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
        )

    def server_context(self) -> ssl.SSLContext:
        """Blocking (a temporary file): build it before the loop runs, or in a thread."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with tempfile.TemporaryDirectory() as folder:
            cert, key = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
            with open(cert, "wb") as file:
                file.write(self.certificate)
            with open(key, "wb") as file:
                file.write(self.key)
            context.load_cert_chain(cert, key)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client context trusting only this certificate."""
        context = ssl.create_default_context(cadata=self.certificate.decode("ascii"))
        return context
