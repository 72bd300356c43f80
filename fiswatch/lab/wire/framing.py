"""MySQL packets, both ways, from the bytes a lab proxy forwards. Pure: no sockets, no clock.

A packet is a 3-byte little-endian payload length, a sequence id, and the payload; a payload of
0xFFFFFF bytes is continued by the next packet. `Framer` cuts one direction of a connection into
packets incrementally, across any chunking, keeping at most `keep` bytes of each payload (a 64 MB
query costs `keep` bytes, not 64 MB). Given `hold`/`replace`, it also lets a caller rewrite whole
packets in place (the Aurora topology answers, lab/aurora.py); without them the bytes it returns
are the bytes it was given, the same object.

The parsers of one payload each (greeting, handshake, answers) are in payload.py; they raise
`Malformed` (a ValueError, defined here) on anything they cannot read and never anything else.
The session layer (session.py) turns `Malformed` into "not measured: <reason>" and keeps forwarding.

Protocol reference: https://mariadb.com/kb/en/clientserver-protocol/ (handshake, OK/ERR/EOF).
"""
from typing import Callable, List, NamedTuple, Optional

MAX_PAYLOAD = 0xFFFFFF
KEEP = 4096  # payload bytes kept per packet by default: enough to classify any command

# Capability flags used here.
CLIENT_CONNECT_WITH_DB = 0x8
CLIENT_COMPRESS = 0x20
CLIENT_PROTOCOL_41 = 0x200
CLIENT_SSL = 0x800
CLIENT_SECURE_CONNECTION = 0x8000
CLIENT_PLUGIN_AUTH = 0x80000
CLIENT_CONNECT_ATTRS = 0x100000
CLIENT_PLUGIN_AUTH_LENENC = 0x200000
CLIENT_DEPRECATE_EOF = 0x1000000

# Server status flags (OK / EOF packets).
SERVER_STATUS_IN_TRANS = 0x1
SERVER_STATUS_AUTOCOMMIT = 0x2
SERVER_MORE_RESULTS_EXISTS = 0x8

# Commands (first payload byte of a client packet with sequence id 0).
COM_QUIT = 0x01
COM_INIT_DB = 0x02
COM_QUERY = 0x03
COM_PING = 0x0E
COM_CHANGE_USER = 0x11
COM_STMT_PREPARE = 0x16
COM_STMT_EXECUTE = 0x17
COM_STMT_SEND_LONG_DATA = 0x18
COM_STMT_CLOSE = 0x19
COM_STMT_RESET = 0x1A
COM_RESET_CONNECTION = 0x1F
NO_ANSWER = frozenset((COM_QUIT, COM_STMT_SEND_LONG_DATA, COM_STMT_CLOSE))
COMMAND_NAMES = {COM_QUIT: "quit", COM_INIT_DB: "init_db", COM_QUERY: "query", COM_PING: "ping",
                 COM_CHANGE_USER: "change_user", COM_STMT_PREPARE: "stmt_prepare",
                 COM_STMT_EXECUTE: "stmt_execute", COM_STMT_SEND_LONG_DATA: "stmt_send_long_data",
                 COM_STMT_CLOSE: "stmt_close", COM_STMT_RESET: "stmt_reset",
                 COM_RESET_CONNECTION: "reset_connection"}


class Malformed(ValueError):
    """A payload that does not read as the packet it should be; the message says what."""


class Packet(NamedTuple):
    """One packet: sequence id, payload length, the first `keep` payload bytes, and whether
    the payload continues in the next packet (length 0xFFFFFF)."""
    seq: int
    length: int
    head: bytes

    @property
    def continued(self) -> bool:
        return self.length == MAX_PAYLOAD

    @property
    def whole(self) -> bool:
        return len(self.head) == self.length


def packet_bytes(seq: int, payload: bytes) -> bytes:
    """The wire form of one packet (payload shorter than 16 MB).

    >>> packet_bytes(0, b"\\x0e")
    b'\\x01\\x00\\x00\\x00\\x0e'
    """
    if len(payload) >= MAX_PAYLOAD:
        raise ValueError("payload of %d bytes needs splitting" % len(payload))
    return len(payload).to_bytes(3, "little") + bytes((seq & 0xFF,)) + payload


class Framer:
    """Cuts one direction of a connection into packets, across any chunking.

    feed(data) returns the bytes to forward and calls on_packet(Packet) for every packet it
    completes, in order; on_packet returning True stops framing for good (a TLS or compressed
    session): the rest of the chunk and every later one pass untouched. A packet for which
    hold(seq, length, first payload byte) is true is buffered whole (up to `hold_limit` bytes) and
    forwarded as replace(that Packet) returns it; any other byte is forwarded as received.

    >>> got = []
    >>> f = Framer(on_packet=got.append)
    >>> stream = packet_bytes(0, b"\\x03SELECT 1") + packet_bytes(1, b"\\x00\\x00\\x00\\x02\\x00")
    >>> f.feed(stream[:7]) + f.feed(stream[7:]) == stream, [(p.seq, p.head[:1]) for p in got]
    (True, [(0, b'\\x03'), (1, b'\\x00')])
    """

    def __init__(self, on_packet: Callable[[Packet], Optional[bool]], keep: int = KEEP,
                 hold: Optional[Callable[[int, int, int], bool]] = None,
                 replace: Optional[Callable[[Packet], bytes]] = None, hold_limit: int = 65536) -> None:
        self.on_packet = on_packet
        self.keep = keep
        self.hold = hold
        self.replace = replace
        self.hold_limit = hold_limit
        self.stopped = False
        self._header = b""  # the current packet's header bytes so far (4, or 5 when holding)
        self._seq = 0
        self._length = -1  # -1: reading a header
        self._left = 0  # payload bytes of the current packet still to come
        self._head: List[bytes] = []
        self._kept = 0
        self._held: Optional[List[bytes]] = None

    def feed(self, data: bytes) -> bytes:
        if self.stopped:
            return data
        if self.hold is None:
            self._scan(data, None)
            return data
        out: List[bytes] = []
        self._scan(data, out)
        return b"".join(out)

    # --- internals ---------------------------------------------------------------------
    def _scan(self, data: bytes, out: Optional[List[bytes]]) -> None:
        pos, end = 0, len(data)
        while pos < end:
            if out is None and self._length < 0 and not self._header and end - pos >= 4:
                # fast path, the common case: a whole packet inside this chunk (no copy of what is forwarded
                # beyond the `keep` head, no per-piece bookkeeping)
                length = data[pos] | data[pos + 1] << 8 | data[pos + 2] << 16
                if pos + 4 + length <= end:
                    seq, body = data[pos + 3], pos + 4
                    pos = body + length
                    if self.on_packet(Packet(seq, length, data[body:body + min(length, self.keep)])):
                        self.stopped = True
                        return
                    continue
            if out is not None and self._length < 0 and not self._header and end - pos >= 4:
                # the same with a rewriter (Aurora's instances): a whole packet goes out as one slice, or
                # replaced when held; no per-piece bookkeeping
                length = data[pos] | data[pos + 1] << 8 | data[pos + 2] << 16
                if pos + 4 + length <= end:
                    seq, body, start = data[pos + 3], pos + 4, pos
                    pos = body + length
                    assert self.hold is not None
                    if length <= self.hold_limit and self.hold(seq, length, data[body] if length else -1):
                        packet = Packet(seq, length, data[body:pos])
                        assert self.replace is not None
                        out.append(self.replace(packet))
                    else:
                        packet = Packet(seq, length, data[body:body + min(length, self.keep)])
                        out.append(data[start:pos])
                    if self.on_packet(packet):
                        self.stopped = True
                        out.append(data[pos:])
                        return
                    continue
            if self._length < 0:
                have = len(self._header)
                if have < 4:
                    head = data[pos:pos + 4 - have]
                    pos += len(head)
                    self._header += head
                    if len(self._header) < 4:
                        continue
                length = int.from_bytes(self._header[:3], "little")
                if out is not None and length > 0 and len(self._header) == 4:
                    if pos == end:
                        continue  # holding needs the first payload byte to decide
                    self._header += data[pos:pos + 1]
                    pos += 1
                self._start(length, out)
            else:
                take = min(self._left, end - pos)
                piece = data[pos:pos + take]
                pos += take
                self._left -= take
                if self._held is not None:
                    self._held.append(piece)
                else:
                    if self._kept < self.keep:
                        self._head.append(piece[:self.keep - self._kept])
                        self._kept += len(self._head[-1])
                    if out is not None:
                        out.append(piece)
            if self._left == 0 and self._length >= 0 and self._finish(out):
                self.stopped = True
                if out is not None:
                    out.append(data[pos:])
                return

    def _start(self, length: int, out: Optional[List[bytes]]) -> None:
        header, self._header = self._header, b""
        self._seq, self._length = header[3], length
        self._left = length - (len(header) - 4)
        self._head, self._kept = [], 0
        first = header[4:5]
        if out is not None and length <= self.hold_limit and self.hold is not None \
                and self.hold(self._seq, length, first[0] if first else -1):
            self._held = [first]
            return
        if first:
            self._head.append(first[:self.keep])
            self._kept = len(self._head[-1])
        if out is not None:
            out.append(header)

    def _finish(self, out: Optional[List[bytes]]) -> bool:
        if self._held is not None:
            packet = Packet(self._seq, self._length, b"".join(self._held))
            self._held = None
            assert out is not None and self.replace is not None
            out.append(self.replace(packet))
        else:
            packet = Packet(self._seq, self._length, b"".join(self._head))
        self._length = -1
        self._head, self._kept = [], 0
        return bool(self.on_packet(packet))
