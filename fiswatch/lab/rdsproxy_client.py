"""The client's socket of one RDS Proxy session, read by callbacks (docs/rdsproxy.md "Its own cost").

`ClientLink` is the asyncio Protocol of a client connection: what arrives passes the session's TLS
layer when the lab has one (lab/tls.py: a plaintext client passes it unchanged), is cut into MySQL
packets here, and each complete packet goes to the session at once (`ClientSession.packet`), on the
callback that received it: no task wakes to read a command. The session writes through the link too
(`write`: the TLS layer, then the socket), and waits on it only where it must (`drain`).

A packet of 16 MB or more (a continued payload) is not cut: the session is told (`too_big`) and
what follows is dropped (`linger`). The session pauses reading while a command waits for the one before
it (`pause_reading`), so a client that sends faster than answers come is held by TCP, not by memory.
"""
import asyncio
from typing import Any, Callable, List, Optional

from fiswatch.lab import rdsproxy_wire as W
from fiswatch.lab.wire import framing as F


class ClientLink(asyncio.BufferedProtocol):
    """One client connection: bytes in -> TLS -> packets -> the session; the session's bytes -> TLS -> socket."""

    def __init__(self, accept: Callable[["ClientLink"], Any], tls_factory: Optional[Callable[..., Any]]) -> None:
        self.accept = accept  # RdsProxy.accept: the new ClientSession, or None (refused, the link closed)
        self.tls_factory = tls_factory
        self.tls: Any = None
        self.session: Any = None
        self.transport: Any = None
        self.buffer = W.recv_buffer()  # what the socket is read into: the loop thread's (made on that thread)
        self.buf = bytearray()  # the start of a packet not yet complete
        self.need = 4  # bytes `buf` must hold before another packet can be complete
        self.dropping = False  # after a packet too big: what arrives is dropped
        self.drop_left = -1  # bytes still dropped before the session closes (-1: no bound yet, see linger)
        self.paused_writing = False
        self.drained: List["asyncio.Future[None]"] = []
        self.gone = False

    # --- asyncio's callbacks --------------------------------------------------------------------------
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        if self.tls_factory is not None:
            self.tls = self.tls_factory(transport.write, self._tls_close)
        self.session = self.accept(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(bytes(self.buffer[:nbytes]))

    def data_received(self, data: bytes) -> None:
        session = self.session
        if session is None:
            return
        if self.dropping:
            if self.drop_left >= 0:
                self.drop_left -= len(data)
                if self.drop_left < 0:
                    session.close()
            return
        if self.tls is not None:
            data = self.tls.from_client(data)
            if not data:
                return
        buf = self.buf
        if buf:
            buf += data
            if len(buf) < self.need:
                return
            data = bytes(buf)
            buf.clear()
        pos, size = 0, len(data)
        while size - pos >= 4:
            length = data[pos] | data[pos + 1] << 8 | data[pos + 2] << 16
            if length == F.MAX_PAYLOAD:
                self.dropping = True
                session.too_big()
                return
            end = pos + 4 + length
            if end > size:
                self.need = end - pos
                break
            seq = data[pos + 3]
            payload = data[pos + 4:end]
            pos = end
            session.packet(seq, payload)  # a closed session ignores what follows
        else:
            self.need = 4
        if pos < size:
            buf += data[pos:] if pos else data

    def eof_received(self) -> bool:
        if self.session is None:
            return False
        self.session.client_eof()
        return True  # the session closes the socket: a command already read may still be answered

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.gone = True
        self.resume_writing()
        if self.session is not None:
            self.session.client_eof()

    def pause_writing(self) -> None:
        self.paused_writing = True

    def resume_writing(self) -> None:
        self.paused_writing = False
        drained, self.drained = self.drained, []
        for future in drained:
            if not future.done():
                future.set_result(None)

    # --- what the session calls -----------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if self.tls is not None:
            data = self.tls.from_server(data)
            if not data:
                return
        self.transport.write(data)

    async def drain(self) -> None:
        """Until the socket's buffer is below asyncio's high-water mark again (or the client is gone)."""
        if self.gone:
            raise ConnectionResetError("the client closed the connection")
        if self.paused_writing:
            future = asyncio.get_event_loop().create_future()
            self.drained.append(future)
            await future

    def is_closing(self) -> bool:
        return bool(self.transport.is_closing())

    def close(self) -> None:
        self.transport.close()

    def pause_reading(self) -> None:
        self.transport.pause_reading()

    def resume_reading(self) -> None:
        self.transport.resume_reading()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.transport.get_extra_info(name, default)

    def linger(self, seconds: float, most: int, done: Callable[[], None]) -> None:
        """After a refusal: FIN (not inside TLS), then drop what the client still sends, `most` bytes at most
        for `seconds` at most, then `done`: the kernel does not answer unread bytes with RST, which would
        throw away the error the client has not read yet."""
        if self.tls is None and self.transport.can_write_eof():
            self.transport.write_eof()  # after what is buffered
        self.dropping, self.drop_left = True, most
        self.transport.resume_reading()
        asyncio.get_event_loop().call_later(seconds, done)

    def _tls_close(self) -> None:
        """The TLS layer refused the client (3159 under require-tls, a failed handshake)."""
        self.transport.close()
        if self.session is not None:
            self.session.client_eof()


__all__ = ["ClientLink"]
