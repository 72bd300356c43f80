"""The MySQL protocol pieces the lab's RDS Proxy speaks itself (docs/rdsproxy.md).

The instance proxies (proxy.py) only watch packets go by; the RDS Proxy owns its client sessions:
it greets and authenticates the client itself (mysql_native_password: the lab knows its users'
passwords), logs in to the writer as that user, and forwards commands and answers as whole packets.
This module is that protocol, on asyncio streams: reading and writing packets, the greeting, the
handshake response both ways, the native password scramble, OK/ERR packets, and `AnswerEnd`,
which tells where the server's answer to a command ends and the transaction state it left.
Nothing here knows about failovers. Constants come from wire/framing.py (one place).
"""
import asyncio
import hashlib
import os
import threading
from typing import NamedTuple, Optional, Tuple

from fiswatch.lab.wire import framing as F
from fiswatch.lab.wire import payload as P

NATIVE = b"mysql_native_password"
CLIENT_LONG_PASSWORD, CLIENT_FOUND_ROWS, CLIENT_LONG_FLAG = 0x1, 0x2, 0x4
CLIENT_LOCAL_FILES, CLIENT_IGNORE_SPACE, CLIENT_INTERACTIVE = 0x80, 0x100, 0x400
CLIENT_TRANSACTIONS, CLIENT_MULTI_STATEMENTS, CLIENT_MULTI_RESULTS, CLIENT_PS_MULTI_RESULTS = \
    0x2000, 0x10000, 0x20000, 0x40000
# What the proxy offers a client (and asks of the server): no compression, no LOCAL INFILE, no
# session tracking, no DEPRECATE_EOF (so an answer's end is always an EOF/OK/ERR the proxy can see).
# Connection attributes are taken (the wire accounting reads the client's `_pid`), never passed on
# (login_packet drops them).
PROXY_CAPS = (CLIENT_LONG_PASSWORD | CLIENT_FOUND_ROWS | CLIENT_LONG_FLAG | F.CLIENT_CONNECT_WITH_DB
              | CLIENT_IGNORE_SPACE | F.CLIENT_PROTOCOL_41 | CLIENT_INTERACTIVE | CLIENT_TRANSACTIONS
              | F.CLIENT_SECURE_CONNECTION | CLIENT_MULTI_STATEMENTS | CLIENT_MULTI_RESULTS
              | CLIENT_PS_MULTI_RESULTS | F.CLIENT_PLUGIN_AUTH | F.CLIENT_PLUGIN_AUTH_LENENC
              | F.CLIENT_CONNECT_ATTRS)
MAX_PACKET = F.MAX_PAYLOAD - 1  # a command longer than one packet is refused (1153), as the lab's bound
COM_FIELD_LIST, COM_STATISTICS = 0x04, 0x09


class TooBig(Exception):
    """A packet of 16 MB or more (a continued payload): the proxy does not take it."""


class ProtocolError(Exception):
    """A packet that does not read as what it should be; str() says what."""


# --- packets on streams --------------------------------------------------------------------------
async def read_packet(reader: asyncio.StreamReader, allow_continued: bool = False) -> Tuple[int, bytes, bool]:
    """(sequence id, payload, continued) of the next packet; TooBig for a continued one unless allowed."""
    header = await reader.readexactly(4)
    length = header[0] | header[1] << 8 | header[2] << 16
    if length == F.MAX_PAYLOAD and not allow_continued:
        raise TooBig("a packet of %d bytes or more" % F.MAX_PAYLOAD)
    return header[3], await reader.readexactly(length), length == F.MAX_PAYLOAD


RECV_CHUNK = 65536  # bytes one read of a socket takes at most (rdsproxy_client.py, rdsproxy_backend.py)
_buffers = threading.local()


def recv_buffer() -> memoryview:
    """The buffer a socket of this thread's loop is read into (asyncio.BufferedProtocol): copied out at once,
    so one per thread serves every socket. asyncio's own read asks the kernel for 256 KiB into a new bytes
    object each time, which costs about 10 us more per read here (glibc gives such a block back each time).
    """
    buffer = getattr(_buffers, "buffer", None)
    if buffer is None:
        buffer = _buffers.buffer = memoryview(bytearray(RECV_CHUNK))
    return buffer


_MAY_MATTER = (b"set", b"use", b"create", b"lock", b"prepare", b"/*", b"--", b"#")


def may_change_session(payload: bytes) -> bool:
    """Could this COM_QUERY change the session's state (rdsproxy_session.statement_effect decides)? A cheap
    test on the bytes first: most statements start with another word and hold no `@` and no GET_LOCK.

    >>> may_change_session(b"\\x03INSERT INTO t VALUES (1)"), may_change_session(b"\\x03 set autocommit=0")
    (False, True)
    >>> may_change_session(b"\\x03SELECT GET_LOCK('a', 1)"), may_change_session(b"\\x03SELECT @x := 1")
    (True, True)
    """
    head = payload[1:65].lstrip().lower()
    if head.startswith(_MAY_MATTER):
        return True
    text = payload[1:4097]
    return b"@" in text or b"get_lock" in text.lower()


def raw(seq: int, payload: bytes) -> bytes:
    """The wire form of a packet (continued ones too: the header says 0xFFFFFF)."""
    return len(payload).to_bytes(3, "little") + bytes((seq & 0xFF,)) + payload


def err_packet(seq: int, code: int, message: str, state: str = "HY000") -> bytes:
    """An ERR packet.

    >>> err_packet(1, 1105, "x")
    b'\\n\\x00\\x00\\x01\\xffQ\\x04#HY000x'
    """
    payload = b"\xff" + code.to_bytes(2, "little") + b"#" + state.encode("ascii")[:5] + message.encode("utf-8")
    return raw(seq, payload[:F.MAX_PAYLOAD - 1])


def ok_packet(seq: int, status: int = F.SERVER_STATUS_AUTOCOMMIT) -> bytes:
    return raw(seq, b"\x00\x00\x00" + status.to_bytes(2, "little") + b"\x00\x00")


# --- authentication --------------------------------------------------------------------------------
def native_scramble(password: str, salt: bytes) -> bytes:
    """mysql_native_password: SHA1(pw) XOR SHA1(salt + SHA1(SHA1(pw))); empty for no password.

    >>> native_scramble("", b"x" * 20)
    b''
    >>> len(native_scramble("secret", b"12345678901234567890"))
    20
    """
    if not password:
        return b""
    stage1 = hashlib.sha1(password.encode("utf-8")).digest()
    stage2 = hashlib.sha1(salt + hashlib.sha1(stage1).digest()).digest()
    return bytes(a ^ b for a, b in zip(stage1, stage2))


def new_salt() -> bytes:
    """20 printable bytes, as a server's scramble (never NUL)."""
    return bytes(33 + b % 94 for b in os.urandom(20))


def greeting(conn_id: int, salt: bytes, version: str, caps: int = PROXY_CAPS, charset: int = 45) -> bytes:
    """The proxy's protocol-10 greeting (sequence id 0)."""
    payload = (b"\x0a" + version.encode("utf-8") + b"\x00" + (conn_id & 0xFFFFFFFF).to_bytes(4, "little")
               + salt[:8] + b"\x00" + (caps & 0xFFFF).to_bytes(2, "little") + bytes((charset,))
               + F.SERVER_STATUS_AUTOCOMMIT.to_bytes(2, "little") + (caps >> 16 & 0xFFFF).to_bytes(2, "little")
               + bytes((21,)) + b"\x00" * 10 + salt[8:20] + b"\x00" + NATIVE + b"\x00")
    return raw(0, payload)


class Login(NamedTuple):
    """A client's handshake response."""
    capabilities: int
    charset: int
    user: str
    auth: bytes
    database: str
    plugin: bytes


class _Cursor:
    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.pos, self.what = data, 0, what

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ProtocolError("%s ends early (offset %d of %d)" % (self.what, self.pos, len(self.data)))
        piece = self.data[self.pos:self.pos + n]
        self.pos += n
        return piece

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "little")

    def cstring(self) -> bytes:
        end = self.data.find(b"\x00", self.pos)
        if end < 0:
            raise ProtocolError("%s: unterminated string at offset %d" % (self.what, self.pos))
        piece, self.pos = self.data[self.pos:end], end + 1
        return piece

    def lenenc(self) -> int:
        first = self.uint(1)
        if first < 0xFB:
            return first
        if first in (0xFC, 0xFD, 0xFE):
            return self.uint({0xFC: 2, 0xFD: 3, 0xFE: 8}[first])
        raise ProtocolError("%s: bad length at offset %d" % (self.what, self.pos - 1))

    def left(self) -> int:
        return len(self.data) - self.pos


def parse_login(payload: bytes) -> Login:
    """The client's HandshakeResponse41 (ProtocolError on anything else)."""
    c = _Cursor(payload, "client handshake")
    caps = c.uint(4)
    if not caps & F.CLIENT_PROTOCOL_41:
        raise ProtocolError("client handshake without CLIENT_PROTOCOL_41")
    c.take(4)
    charset = c.uint(1)
    c.take(23)
    if caps & F.CLIENT_SSL and not c.left():
        raise ProtocolError("TLS requested, but the lab's RDS Proxy was not offered TLS")
    user = c.cstring()
    if caps & F.CLIENT_PLUGIN_AUTH_LENENC:
        auth = c.take(c.lenenc())
    elif caps & F.CLIENT_SECURE_CONNECTION:
        auth = c.take(c.uint(1))
    else:
        auth = c.cstring()
    database = c.cstring() if caps & F.CLIENT_CONNECT_WITH_DB and c.left() else b""
    plugin = c.cstring() if caps & F.CLIENT_PLUGIN_AUTH and c.left() else b""
    return Login(caps, charset, user.decode("utf-8", "replace"), auth, database.decode("utf-8", "replace"), plugin)


def login_packet(login: Login, seq: int = 1) -> bytes:
    """A handshake response to a server (sequence id 1), from `login` (auth already scrambled)."""
    caps = login.capabilities | F.CLIENT_PROTOCOL_41 | F.CLIENT_SECURE_CONNECTION | F.CLIENT_PLUGIN_AUTH
    caps &= ~(F.CLIENT_PLUGIN_AUTH_LENENC | F.CLIENT_CONNECT_ATTRS)
    caps = caps | F.CLIENT_CONNECT_WITH_DB if login.database else caps & ~F.CLIENT_CONNECT_WITH_DB
    payload = (caps.to_bytes(4, "little") + MAX_PACKET.to_bytes(4, "little") + bytes((login.charset & 0xFF,))
               + b"\x00" * 23 + login.user.encode("utf-8") + b"\x00" + bytes((len(login.auth),)) + login.auth)
    if login.database:
        payload += login.database.encode("utf-8") + b"\x00"
    return raw(seq, payload + NATIVE + b"\x00")


class ServerHello(NamedTuple):
    version: str
    connection_id: int
    capabilities: int
    salt: bytes


def parse_hello(payload: bytes) -> ServerHello:
    """A server's greeting: version, connection id, capabilities, the 20-byte scramble."""
    if payload[:1] == b"\xff":
        raise ProtocolError("the server refused the connection: %s" % payload[9:].decode("utf-8", "replace"))
    c = _Cursor(payload, "server greeting")
    if c.uint(1) != 10:
        raise ProtocolError("server greeting is not protocol 10")
    version = c.cstring().decode("utf-8", "replace")
    conn_id = c.uint(4)
    salt = c.take(8)
    c.take(1)
    caps = c.uint(2)
    c.take(3)
    caps |= c.uint(2) << 16
    c.take(11)
    salt += c.take(12)
    return ServerHello(version, conn_id, caps, salt)


def switch_salt(payload: bytes) -> Optional[bytes]:
    """The scramble of an AuthSwitchRequest to mysql_native_password, None for another plugin."""
    c = _Cursor(payload, "auth switch")
    c.take(1)
    if c.cstring() != NATIVE:
        return None
    return c.take(min(20, c.left()))


# --- where an answer ends --------------------------------------------------------------------------
FIRST, COLUMNS, COLUMNS_EOF, ROWS, PREPARE = "first", "columns", "columns eof", "rows", "prepare"


class AnswerEnd:
    """Fed the server's answer packets (first piece of each), says when the answer is complete.

    `status` is the server status of the last OK/EOF (SERVER_STATUS_IN_TRANS: a transaction is open).

    >>> end = AnswerEnd(F.COM_QUERY)
    >>> [end.feed(p) for p in (b"\\x01", b"\\x03def", b"\\xfe\\x00\\x00\\x02\\x00", b"\\x011",
    ...                        b"\\xfe\\x00\\x00\\x03\\x00")]
    [False, False, False, False, True]
    >>> end.status & F.SERVER_STATUS_IN_TRANS
    1
    """

    def __init__(self, command: int) -> None:
        self.reset(command)

    def reset(self, command: int) -> None:
        """Start over, for the answer to `command`."""
        self.command = command
        self.state = COLUMNS_EOF if command == COM_FIELD_LIST else FIRST
        self.left = 0
        self.status = -1  # unknown until an OK or EOF says

    def feed(self, payload: bytes) -> bool:
        first = payload[:1]
        if first == b"\xff" and self.state != COLUMNS:
            return True  # ERR ends any answer
        if self.command == COM_STATISTICS:
            return True
        if self.state == FIRST:
            if first == b"\x00" and self.command == F.COM_STMT_PREPARE:
                _id, columns, params = P.parse_prepare_ok(payload)
                self.left = (params + 1 if params else 0) + (columns + 1 if columns else 0)
                self.state = PREPARE
                return self.left == 0
            if first == b"\x00":
                return self._ended(P.parse_answer(payload).status)
            c = _Cursor(payload, "column count")
            self.left = c.lenenc()
            self.state = COLUMNS
            return False
        if self.state == PREPARE:
            self.left -= 1
            return self.left <= 0
        if self.state == COLUMNS:
            self.left -= 1
            if self.left <= 0:
                self.state = COLUMNS_EOF
            return False
        if first == b"\xfe" and len(payload) < 9:
            if self.state == COLUMNS_EOF:
                if self.command == COM_FIELD_LIST:
                    return True
                self.state = ROWS
                return False
            return self._ended(P.parse_answer(payload).status)
        return False

    def _ended(self, status: int) -> bool:
        self.status = status
        if status & F.SERVER_MORE_RESULTS_EXISTS:
            self.state = FIRST
            return False
        return True
