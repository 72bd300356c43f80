"""One proxied connection of the fault proxy (lab/proxy.py): its two sockets, the bytes both ways, the faults.

A `Connection` belongs to a FaultProxy and lives on its loop's thread: it forwards (or fences,
delays, resets) what either side sends, through the connection's TLS layer and session. How it
behaves in each mode is told in lab/proxy.py's docstring.
"""
import asyncio
import socket
import struct
from typing import Any, Dict, Optional


def abort_with_rst(transport: Optional[asyncio.Transport]) -> None:
    """Close a TCP transport so the peer sees RST, not FIN."""
    if transport is None or transport.is_closing():
        if transport is not None:
            transport.abort()
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    transport.abort()


class Side(asyncio.Protocol):
    """One socket of a proxied connection; hands received bytes to its connection."""

    def __init__(self, conn: "Connection", upstream: bool) -> None:
        self.conn = conn
        self.upstream = upstream
        self.transport: Optional[asyncio.Transport] = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if not self.upstream:
            self.conn.proxy.client_connected(self.conn)

    def data_received(self, data: bytes) -> None:
        self.conn.received(self.upstream, data)

    def eof_received(self) -> Optional[bool]:
        self.conn.eof(self.upstream)
        return True  # keep the transport open: the connection decides

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.conn.lost(self.upstream)


class Connection:
    """A client connection and (unless fenced from the start) its upstream connection."""

    def __init__(self, proxy: Any) -> None:
        self.proxy = proxy
        self.client = Side(self, upstream=False)
        self.server: Optional[Side] = None
        self.fenced = False
        self.closed = False
        self.pending: list = []  # client bytes received before upstream is connected
        self.client_eof = False
        self.server_eof = False
        self._tails: Dict[bool, Optional["asyncio.Future[None]"]] = {False: None, True: None}  # per-direction last delayed write
        # the TLS layer (fiswatch/lab/tls.py): raw bytes in, plaintext to the session and the rest
        self.tls = proxy.tls(lambda data: self._write(self.client, data), self.close) \
            if proxy.tls is not None else None
        self.session: Any = None  # set when the client socket is up (proxy.client_connected)

    # --- state changes -------------------------------------------------------------
    def fence(self) -> None:
        self.fenced = True
        self.pending = []

    def reset(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._end_session()
        abort_with_rst(self.client.transport)
        if self.server is not None:
            abort_with_rst(self.server.transport)
        self.proxy.forget(self)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._end_session()
        for side in (self.client, self.server):
            if side is not None and side.transport is not None:
                side.transport.close()
        self.proxy.forget(self)

    def _end_session(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            session.close()

    # --- data ----------------------------------------------------------------------
    def received(self, from_upstream: bool, data: bytes) -> None:
        if self.fenced or self.closed:
            return  # read and dropped
        # the session (framing, accounting, answers) sees plaintext both ways: what the server
        # sends before TLS encrypts it for the client, what the client sends after TLS decrypts it;
        # one that only observes (no rewriter) reads a chunk once it is forwarded: never held up by it
        session, plain = self.session, data
        if from_upstream:
            if self.tls is not None:
                data = self.tls.from_server(data)
            if data and not self.closed:
                self._send(True, data)
            if session is not None:
                session.from_server(plain)
            return
        if self.tls is not None:
            data = self.tls.from_client(data)
            if not data or self.closed:
                return
        if session is not None and not getattr(session, "observes_only", False):
            data, session = session.from_client(data), None
            if not data:
                return
        self._send(False, data)
        if session is not None:
            session.from_client(data)

    def _send(self, from_upstream: bool, data: bytes) -> None:
        if not from_upstream and (self.server is None or self.server.transport is None):
            self.pending.append(data)
            return
        target = self.client if from_upstream else self.server
        delay = self.proxy.latency if self.proxy.mode == "latency" else 0.0
        if not from_upstream and self.session is not None:  # a simulated disk congestion (lab/wire/alter_system.py)
            delay += getattr(self.session, "take_delay", float)()  # float() is 0.0: a session without it
        previous = self._tails[from_upstream]
        if previous is not None and previous.done():
            previous = self._tails[from_upstream] = None
        if delay > 0 or previous is not None:  # keep order behind delayed chunks
            loop = asyncio.get_event_loop()
            due = loop.time() + delay
            self._tails[from_upstream] = asyncio.ensure_future(self._later(previous, due, target, data))
        else:
            self._write(target, data)

    async def _later(self, previous: Optional["asyncio.Future"], due: float, target: Optional[Side],
                     data: bytes) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        loop = asyncio.get_event_loop()
        remaining = due - loop.time()
        if remaining > 0:
            await asyncio.sleep(remaining)
        self._write(target, data)

    def _write(self, target: Optional[Side], data: bytes) -> None:
        if self.fenced or self.closed or target is None or target.transport is None:
            return
        if not target.transport.is_closing():
            target.transport.write(data)

    def upstream_ready(self) -> None:
        assert self.server is not None and self.server.transport is not None
        pending, self.pending = self.pending, []
        for chunk in pending:
            self._write(self.server, chunk)
        if self.client_eof and self.server.transport.can_write_eof():
            self.server.transport.write_eof()

    def eof(self, from_upstream: bool) -> None:
        if self.fenced or self.closed:
            return  # a fenced connection never shows the peer's FIN
        if from_upstream:
            self.server_eof = True
        else:
            self.client_eof = True
        target = self.client if from_upstream else self.server
        if target is not None and target.transport is not None and not target.transport.is_closing() \
                and target.transport.can_write_eof():
            target.transport.write_eof()
        if self.client_eof and self.server_eof:
            self.close()

    def lost(self, from_upstream: bool) -> None:
        if self.closed:
            return
        if from_upstream and self.fenced:
            return  # the server side went away; the fenced client keeps waiting
        self.close()
