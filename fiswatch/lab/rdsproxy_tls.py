"""TLS on the lab's RDS Proxy endpoint, as on the instance proxies (lab/tls.py).

The RDS Proxy answers the MySQL handshake itself (rdsproxy_session.py), so the TLS layer cannot sit
between it and a server as it does in lab/proxy.py. Instead each client connection gets a front in
memory: a pump reads the client's socket, hands the bytes to a `TlsSession` and feeds the plaintext to
the StreamReader the proxy's ClientSession reads; what the session writes passes the same TlsSession
(`TlsWriter`) on its way to the client's socket. The session sees the bytes a plaintext client sends
(TlsSession renumbers the handshake's packets and clears CLIENT_SSL), the client sees the lab's policy
(offered; `lab up --require-tls`: 3159 without TLS) and the certificate issued for the proxy's name
(`aurora-proxy` in the lab's tls dir, names fiswatch-lab.proxy-c0ffee0c0ffe.lab-1.rds.amazonaws.com and its old .lab.rds.local name). No extra socket:
the cost is the TLS records' crypto and one copy. The pump does not pause a client that sends faster
than the session reads (the session's own bounds apply: a command of 16 MB or more is refused).
"""
import asyncio
from typing import Any, Callable, List, Set, Tuple

CHUNK = 65536
_pumping: Set["asyncio.Task[None]"] = set()  # the loop keeps only weak references to tasks


class TlsWriter:
    """What a ClientSession writes to, in front of the client's StreamWriter: plaintext in, TLS out."""

    def __init__(self, tls: Any, writer: asyncio.StreamWriter) -> None:
        self.tls, self.writer = tls, writer

    def write(self, data: bytes) -> None:
        out = self.tls.from_server(data)
        if out:
            self.writer.write(out)

    async def drain(self) -> None:
        await self.writer.drain()

    @property
    def transport(self) -> Any:
        """The client socket's transport (rdsproxy_answer.py asks how much waits unsent)."""
        return self.writer.transport

    def close(self) -> None:
        self.writer.close()

    def is_closing(self) -> bool:
        return self.writer.is_closing()

    def can_write_eof(self) -> bool:
        return False  # no half-close inside TLS

    def write_eof(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.writer.get_extra_info(name, default)


async def tls_front(tls_factory: Callable[..., Any], reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter) -> Tuple[asyncio.StreamReader, Any]:
    """The plaintext reader and writer a ClientSession talks through; the client's bytes pass a TlsSession."""
    plain = asyncio.StreamReader()

    ended: List[bool] = []  # the plaintext's end was fed (StreamReader takes no data after it)

    def end() -> None:
        if not ended:
            ended.append(True)
            plain.feed_eof()

    def close() -> None:
        if not writer.is_closing():
            writer.close()
        end()

    tls = tls_factory(writer.write, close)

    async def pump() -> None:
        try:
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    break
                text = tls.from_client(data)
                if text and not ended:
                    plain.feed_data(text)
        except (OSError, ConnectionError):
            pass
        finally:
            end()

    task = asyncio.get_running_loop().create_task(pump())
    _pumping.add(task)
    task.add_done_callback(_pumping.discard)
    return plain, TlsWriter(tls, writer)


def tls_for_lab(layout: Any) -> Callable[..., Any]:
    """The TlsSession factory of the lab's RDS Proxy: its certificate, the lab's policy."""
    from fiswatch.lab import layout as L
    from fiswatch.lab.tls import session_factory
    from fiswatch.lab.tlsca import cert_file, key_file

    return session_factory(cert_file(layout.tls_dir, L.RDS_PROXY_ENDPOINT),
                           key_file(layout.tls_dir, L.RDS_PROXY_ENDPOINT), layout.tls)


__all__ = ["TlsWriter", "tls_front", "tls_for_lab"]
