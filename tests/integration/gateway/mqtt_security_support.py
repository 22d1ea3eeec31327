"""A Mosquitto that authenticates like production: a password file, a TLS listener that requires
client certificates (the certificate's CN is the user name), and a topic ACL that confines each
gateway to its own prefix. Certificates are made here, with ``cryptography``, into a temporary
directory; passwords with ``mosquitto_passwd``."""

from __future__ import annotations

import datetime as dt
import ipaddress
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from homewatch.embedded.broker import Mosquitto, free_port, wait_for_port

#: The ACL of deploy/mosquitto/acl.example, with the test's topic root.
ACL = """\
# gateways: their own subtree only (user name = gateway id, from the password file or the
# client certificate's CN)
pattern write {root}/gateways/%u/readings
pattern write {root}/gateways/%u/status
pattern read {root}/gateways/%u/config
# the ingest server and the provisioning service
user ingest
topic read {root}/gateways/+/readings
topic read {root}/gateways/+/status
topic write {root}/gateways/+/config
"""


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    rogue_ca: Path  # a CA that signed nothing the broker uses

    def client(self, directory: Path, name: str) -> tuple[Path, Path]:
        """A client certificate with CN=name, signed by the broker's CA."""
        return _issue(directory, name, self.ca, self.ca.with_suffix(".key"), server=False)


def make_pki(directory: Path) -> Pki:
    ca, _ = _self_signed(directory, "homewatch test CA")
    rogue, _ = _self_signed(directory, "rogue CA")
    cert, key = _issue(directory, "localhost", ca, ca.with_suffix(".key"), server=True)
    return Pki(ca, cert, key, rogue)


def _key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return key


def _self_signed(directory: Path, cn: str) -> tuple[Path, Path]:
    stem = directory / cn.replace(" ", "-")
    key = _key(stem.with_suffix(".key"))
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
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
    path = stem.with_suffix(".crt")
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path, stem.with_suffix(".key")


def _issue(directory: Path, cn: str, ca: Path, ca_key: Path, *, server: bool) -> tuple[Path, Path]:
    ca_cert = x509.load_pem_x509_certificate(ca.read_bytes())
    signing_key = serialization.load_pem_private_key(ca_key.read_bytes(), password=None)
    stem = directory / f"{'server' if server else 'client'}-{cn}"
    key = _key(stem.with_suffix(".key"))
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]
                if server
                else [x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    cert = builder.sign(signing_key, hashes.SHA256())  # type: ignore[arg-type]
    path = stem.with_suffix(".crt")
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path, stem.with_suffix(".key")


def password_file(directory: Path, users: dict[str, str]) -> Path:
    """A Mosquitto password file made by ``mosquitto_passwd`` (hashed, never plain)."""
    binary = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    path = directory / "passwords"
    path.touch()
    for user, password in users.items():
        subprocess.run([binary, "-b", str(path), user, password], check=True, capture_output=True)
    path.chmod(0o600)
    return path


@dataclass
class SecureBroker:
    broker: Mosquitto
    tls_port: int
    pki: Pki

    @property
    def url(self) -> str:
        return self.broker.endpoint.url

    @property
    def tls_url(self) -> str:
        return f"mqtts://localhost:{self.tls_port}"


def start_secure_broker(directory: Path, root: str, users: dict[str, str]) -> SecureBroker:
    pki = make_pki(directory)
    passwords = password_file(directory, users)
    acl = directory / "acl"
    acl.write_text(ACL.format(root=root))
    tls_port = free_port()
    broker = Mosquitto(
        allow_anonymous=False,
        extra_config=(
            f"password_file {passwords}\n"
            f"acl_file {acl}\n"
            f"listener {tls_port} 127.0.0.1\n"
            f"cafile {pki.ca}\n"
            f"certfile {pki.server_cert}\n"
            f"keyfile {pki.server_key}\n"
            "require_certificate true\n"
            "use_identity_as_username true\n"
        ),
    )
    broker.start()
    if not wait_for_port("127.0.0.1", tls_port, 10):
        broker.close()
        raise RuntimeError(f"the TLS listener did not come up; see {broker.log_file}")
    return SecureBroker(broker, tls_port, pki)
