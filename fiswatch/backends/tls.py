"""What every backend shares about TLS: the client context, the facts of a connection, the `tls` kind.

A verifying context checks the certificate against the endpoint's *name* while the socket goes to
the address fiswatch resolved (`NamedContext`): the address column stays what was really reached,
and no driver needs to resolve a name by itself.
"""
import ssl
from typing import Any, Optional, Tuple

from fiswatch.config.tls import TlsOptions
from fiswatch.model import ErrorInfo

PLAIN = "plain"
UNKNOWN = "?"
CR_SSL_CONNECTION_ERROR = 2026
TLS_CODES = (CR_SSL_CONNECTION_ERROR, 3159)  # client-side TLS failure; server requires secure transport
_TLS_WORDS = ("certificate verify failed", "ssl", "tls", "hostname mismatch", "certificate has expired",
              "secure transport", "self-signed certificate", "unable to get local issuer")


class NamedContext(ssl.SSLContext):
    """An SSLContext that checks the certificate against `server_name`, whatever host the driver used."""

    server_name: Optional[str] = None

    def wrap_socket(self, sock: Any, *args: Any, **kwargs: Any) -> Any:
        if self.server_name:
            kwargs["server_hostname"] = self.server_name
        return super().wrap_socket(sock, *args, **kwargs)


def client_context(tls: TlsOptions, server_name: Optional[str]) -> ssl.SSLContext:
    """The context for REQUIRED / VERIFY_CA / VERIFY_IDENTITY (the system's trust store when no CA)."""
    ctx = NamedContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if tls.verifies():
        if tls.ca:
            ctx.load_verify_locations(cafile=tls.ca)
        else:
            ctx.load_default_certs()
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.check_hostname = tls.mode == "VERIFY_IDENTITY"
        ctx.server_name = server_name if ctx.check_hostname else None
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def socket_facts(sock: Any) -> Tuple[str, str]:
    """(version, cipher) of a Python socket: ('TLSv1.3', 'TLS_AES_256_GCM_SHA384') or ('plain', '')."""
    version = getattr(sock, "version", None)
    if isinstance(sock, (ssl.SSLSocket, ssl.SSLObject)) and callable(version):
        cipher = sock.cipher()
        return (sock.version() or UNKNOWN, cipher[0] if cipher else "")
    return (PLAIN, "")


def required_but_plain() -> ErrorInfo:
    return ErrorInfo(CR_SSL_CONNECTION_ERROR, "tls", "SSL is required but the server doesn't support it "
                                                     "(--ssl-mode REQUIRED or stricter refuses a plaintext session)")


class TlsRequiredError(Exception):
    """Raised by a backend when its driver went plaintext under REQUIRED or stricter."""

    def __init__(self) -> None:
        info = required_but_plain()
        super().__init__(info.code, info.message)
        self.info = info


def is_tls_error(code: Optional[int], message: str) -> bool:
    """Does this error come from TLS (handshake, certificate, or a server that requires it)?

    >>> is_tls_error(2003, "Can't connect to MySQL server on '127.0.10.1' ([SSL: CERTIFICATE_VERIFY_FAILED] "
    ...              "certificate verify failed: Hostname mismatch)")
    True
    >>> is_tls_error(2013, 'Lost connection to MySQL server during query')
    False
    """
    if code in TLS_CODES:
        return True
    lowered = message.lower()
    return any(word in lowered for word in _TLS_WORDS) and "timed out" not in lowered
