"""One command's answer on its way from the server to the client, forwarded as it arrives.

The server session's protocol (rdsproxy_backend.ForwardingProtocol) hands each chunk it receives to
`Answer.feed` on the spot: the bytes go to the client unchanged (a command's answer counts from
sequence id 1 on both sides; an id that differs is rewritten in place) and no task wakes for them.
When the answer is complete the session is told (`answered`: its transaction state, the server session
back to the pool); when the server session goes first, `answer_lost` (1105).
A client slower than the server pauses reading from the server (over HIGH_WATER bytes unsent).
"""
import asyncio
from typing import Any, Optional

from fiswatch.lab import rdsproxy_wire as W
from fiswatch.lab.wire import framing as F

HIGH_WATER = 1 << 20  # bytes waiting for the client after which the server's answer waits too


class Answer:
    """The answers of one client session, one after the other (`start` for each command: no new objects)."""

    def __init__(self, session: Any) -> None:
        self.session = session  # rdsproxy_session.ClientSession: to_client(), answered(), answer_lost(), link, seq_out
        self.server: Any = None  # rdsproxy_backend.ServerSession
        self.command = -1
        self.end = W.AnswerEnd(-1)
        self.continued = False
        self.buf = bytearray()
        self.sink, self.on_lost = self.feed, self.lost  # bound once

    def start(self, server: Any, command: int) -> None:
        """The answer to `command` comes from `server` now."""
        self.server, self.command, self.continued = server, command, False
        self.end.reset(command)
        del self.buf[:]
        server.forward(self.sink, self.on_lost)

    def feed(self, chunk: bytes) -> None:
        try:
            self._feed(chunk)
        except Exception:  # noqa: BLE001 - a malformed answer: the server session is dropped, the client gets 1105
            self.server.close()

    def _feed(self, chunk: bytes) -> None:
        session, buf = self.session, self.buf
        data: Any = chunk  # whole packets are read from the chunk itself unless a part came before (buf)
        if buf:
            buf += chunk
            data = buf
        pos, size, ended, head, seq = 0, len(data), False, b"", session.seq_out
        while size - pos >= 4:
            length = data[pos] | data[pos + 1] << 8 | data[pos + 2] << 16
            if size - pos - 4 < length:
                break
            if data[pos + 3] != seq:
                if data is chunk:
                    buf += chunk  # a copy to renumber in (buf was empty)
                    data = buf
                data[pos + 3] = seq
            seq = (seq + 1) & 0xFF
            head = bytes(data[pos + 4:pos + 4 + min(length, 256)])  # all AnswerEnd reads (OK, EOF, counts)
            pos += 4 + length
            if not self.continued and self.end.feed(head):
                ended = True
                break
            self.continued = length == F.MAX_PAYLOAD
        session.seq_out = seq
        if data is buf:
            if pos:
                session.to_client(bytes(buf) if pos == size else bytes(buf[:pos]))
                del buf[:pos]
        else:
            if pos:
                session.to_client(chunk if pos == size else chunk[:pos])
            if pos < size:
                buf += chunk[pos:]
        if ended:
            self.server.forward(None, None)
            session.answered(self.end.status, self.command == F.COM_INIT_DB and head[:1] == b"\xff")
        elif session.link.transport.get_write_buffer_size() > HIGH_WATER:
            session.proxy.count("answers_paused")
            self.server.pause_reading()
            asyncio.ensure_future(self._resume(self.server))

    async def _resume(self, server: Any) -> None:
        try:
            await self.session.link.drain()
        except (OSError, RuntimeError):
            pass
        server.resume_reading()

    def lost(self, _exc: Optional[BaseException]) -> None:
        """The server session closed before the answer was complete."""
        self.server.forward(None, None)
        self.session.answer_lost()
