"""TLS on the lab's RDS Proxy endpoint, as on the instance proxies (lab/tls.py).

The RDS Proxy answers the MySQL handshake itself (rdsproxy_session.py), so the TLS layer cannot sit
between it and a server as it does in lab/proxy.py. Instead each client connection gets a front: a
socket pair, one end handed to the proxy's ClientSession as if the client had connected in
plaintext, the other end pumped through a `TlsSession` to the client's socket. The session sees the
same bytes a plaintext client sends (TlsSession renumbers the handshake's packets and clears
CLIENT_SSL), the client sees the lab's policy (offered; `lab up --require-tls`: 3159 without TLS) and
the certificate issued for the proxy's name (`aurora-proxy` in the lab's tls dir, names
fiswatch-lab.proxy-c0ffee.lab.rds.local). The extra hop costs a copy per packet, only with TLS.
"""
import asyncio
import socket
from typing import Any, Callable, Set, Tuple

Streams = Tuple[asyncio.StreamReader, asyncio.StreamWriter]
CHUNK = 65536
_pumping: Set["asyncio.Task[None]"] = set()  # the loop keeps only weak references to tasks


async def tls_front(tls_factory: Callable[..., Any], reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter) -> Streams:
    """The plaintext streams a ClientSession talks through; the client's bytes pass a TlsSession."""
    inner, outer = socket.socketpair()
    session_side = await asyncio.open_connection(sock=inner)
    pump_reader, pump_writer = await asyncio.open_connection(sock=outer)

    def close() -> None:
        for w in (writer, pump_writer):
            if not w.is_closing():
                w.close()

    tls = tls_factory(writer.write, close)

    async def client_to_session() -> None:
        try:
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    break
                plain = tls.from_client(data)
                if plain:
                    pump_writer.write(plain)
                    await pump_writer.drain()
        except (OSError, ConnectionError):
            pass
        finally:
            close()

    async def session_to_client() -> None:
        try:
            while True:
                data = await pump_reader.read(CHUNK)
                if not data:
                    break
                out = tls.from_server(data)
                if out:
                    writer.write(out)
                    await writer.drain()
        except (OSError, ConnectionError):
            pass
        finally:
            close()

    loop = asyncio.get_running_loop()
    for pump in (client_to_session(), session_to_client()):
        task = loop.create_task(pump)
        _pumping.add(task)
        task.add_done_callback(_pumping.discard)
    return session_side


def tls_for_lab(layout: Any) -> Callable[..., Any]:
    """The TlsSession factory of the lab's RDS Proxy: its certificate, the lab's policy."""
    from fiswatch.lab import layout as L
    from fiswatch.lab.tls import session_factory
    from fiswatch.lab.tlsca import cert_file, key_file

    return session_factory(cert_file(layout.tls_dir, L.RDS_PROXY_ENDPOINT),
                           key_file(layout.tls_dir, L.RDS_PROXY_ENDPOINT), layout.tls)


__all__ = ["tls_front", "tls_for_lab"]
