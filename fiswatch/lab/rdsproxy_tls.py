"""TLS on the lab's RDS Proxy endpoint, as on the instance proxies (lab/tls.py).

The RDS Proxy answers the MySQL handshake itself (rdsproxy_session.py), so the TLS layer cannot sit
between it and a server as it does in lab/proxy.py. Instead each client connection's link
(rdsproxy_client.ClientLink) hands what the client's socket receives to a `TlsSession` before cutting
it into packets, and passes what the session writes through the same TlsSession on its way to the
socket. The session sees the bytes a plaintext client sends (TlsSession renumbers the handshake's
packets and clears CLIENT_SSL), the client sees the lab's policy (offered; `lab up --require-tls`:
3159 without TLS) and the certificate issued for the proxy's name (`aurora-proxy` in the lab's tls dir,
names fiswatch-lab.proxy-c0ffee0c0ffe.lab-1.rds.amazonaws.com and its old .lab.rds.local name). No
extra socket and no extra task: the cost is the TLS records' crypto (a plaintext client's bytes pass
unchanged) and, per chunk, one call each way.
"""
from typing import Any, Callable


def tls_for_lab(layout: Any) -> Callable[..., Any]:
    """The TlsSession factory of the lab's RDS Proxy: its certificate, the lab's policy."""
    from fiswatch.lab import layout as L
    from fiswatch.lab.tls import session_factory
    from fiswatch.lab.tlsca import cert_file, key_file

    return session_factory(cert_file(layout.tls_dir, L.RDS_PROXY_ENDPOINT),
                           key_file(layout.tls_dir, L.RDS_PROXY_ENDPOINT), layout.tls)


__all__ = ["tls_for_lab"]
