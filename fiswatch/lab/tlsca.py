"""The lab's certificate authority and the certificates its proxies present (built with `cryptography`).

As on RDS: one CA signs a server certificate per DB instance. An Aurora instance's certificate
names the instance endpoint (its common name) and, as subject alternative names, the cluster
endpoint and the reader endpoint too, since either may lead to it; an RDS instance's certificate
names the DB instance endpoint, which both the primary and the standby serve (docs/lab.md).

Files, in DIR/tls/ (layout.tls_dir):
  ca.pem            the CA certificate: what a client trusts (the "bundle"); kept across `lab up`
  ca-key.pem        the CA's private key, 0600; never in a record, a status or an event
  <instance>.pem    the instance's certificate followed by the CA (the chain the proxy sends)
  <instance>-key.pem  its private key, 0600
The CA is made once and kept (a client that trusts it keeps working after `lab down` / `lab up`);
the instance certificates are issued again at every `lab up` (expired ones with `--tls-expired`).
"""
import datetime
import os
from typing import Any, Dict, Iterable, Optional, Tuple

CA_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
CA_NAME = "fiswatch-lab-ca-rsa2048-g1"
KEY_BITS = 2048  # rds-ca-rsa2048-g1: RSA 2048, SHA-256
LEAF_DAYS = 365
CA_DAYS = 3650


class PkiError(ValueError):
    """The lab's CA cannot be used; str() is one line naming the file and what to do (no key material)."""


def cert_file(tls_dir: str, instance: str) -> str:
    return os.path.join(tls_dir, instance + ".pem")


def key_file(tls_dir: str, instance: str) -> str:
    return os.path.join(tls_dir, instance + "-key.pem")


def _write(path: str, data: bytes, private: bool) -> None:
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, 0o600 if private else 0o644)
    os.replace(tmp, path)


def _name(common: str) -> Any:
    from cryptography.x509.oid import NameOID
    from cryptography import x509

    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fiswatch lab"),
                      x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Amazon RDS (lab imitation)"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _new_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)


def _pem_key(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _pem_cert(cert: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)


def ensure_ca(tls_dir: str) -> Tuple[Any, Any]:
    """The lab CA (certificate, key): loaded when present, made when not. PkiError if unusable."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    os.makedirs(tls_dir, mode=0o700, exist_ok=True)
    ca_path, key_path = os.path.join(tls_dir, CA_FILE), os.path.join(tls_dir, CA_KEY_FILE)
    if os.path.exists(ca_path) or os.path.exists(key_path):
        try:
            with open(key_path, "rb") as fh:
                key: Any = serialization.load_pem_private_key(fh.read(), password=None)
        except OSError as exc:
            raise PkiError("the lab CA key %s cannot be read (%s): fix its owner/permissions or remove %s to "
                           "make a new CA" % (key_path, exc.strerror or exc, tls_dir))
        except (ValueError, TypeError):
            raise PkiError("the lab CA key %s is not an unencrypted PEM private key: remove %s to make a new CA"
                           % (key_path, tls_dir))
        try:
            with open(ca_path, "rb") as fh:
                cert: Any = x509.load_pem_x509_certificate(fh.read())  # an RSA key's (the lab makes no other)
        except (OSError, ValueError) as exc:
            raise PkiError("the lab CA certificate %s cannot be read (%s): remove %s to make a new CA"
                           % (ca_path, getattr(exc, "strerror", None) or "not a PEM certificate", tls_dir))
        if cert.public_key().public_numbers() != key.public_key().public_numbers():
            raise PkiError("the lab CA certificate %s does not belong to its key %s: remove %s to make a new CA"
                           % (ca_path, key_path, tls_dir))
        return cert, key
    key = _new_key()
    now = datetime.datetime.now(datetime.timezone.utc)
    name = _name(CA_NAME)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    _write(key_path, _pem_key(key), private=True)
    _write(ca_path, _pem_cert(cert), private=False)
    return cert, key


def issue(tls_dir: str, instance: str, names: Iterable[str], ca: Tuple[Any, Any], expired: bool = False,
          now: Optional[datetime.datetime] = None) -> Tuple[str, str]:
    """Issue `instance`'s certificate for `names` (the first is the common name); (cert path, key path).

    expired=True: valid for a year that ended yesterday, as rds-ca-2019's certificates were after
    August 2024."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    ca_cert, ca_key = ca
    names = [n for n in names if n]
    key = _new_key()
    now = now or datetime.datetime.now(datetime.timezone.utc)
    if expired:
        start, end = now - datetime.timedelta(days=LEAF_DAYS + 1), now - datetime.timedelta(days=1)
    else:
        start, end = now - datetime.timedelta(days=1), now + datetime.timedelta(days=LEAF_DAYS)
    cert = (x509.CertificateBuilder().subject_name(_name(names[0])).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_path, key_path = cert_file(tls_dir, instance), key_file(tls_dir, instance)
    _write(key_path, _pem_key(key), private=True)
    _write(cert_path, _pem_cert(cert) + _pem_cert(ca_cert), private=False)
    return cert_path, key_path


def make_lab_pki(tls_dir: str, names_by_instance: Dict[str, Tuple[str, ...]], expired: bool = False) -> str:
    """The CA (kept or made) and a fresh certificate per instance; returns the CA file clients trust."""
    ca = ensure_ca(tls_dir)
    for instance, names in names_by_instance.items():
        issue(tls_dir, instance, names, ca, expired=expired)
    return os.path.join(tls_dir, CA_FILE)
