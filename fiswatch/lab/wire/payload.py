"""The payload of one MySQL packet, read: the server's greeting, the client's handshake response, the
first packet of an answer (OK / ERR / EOF / result set), a prepared statement's id. Pure.

Each parser raises framing.Malformed (a ValueError) on anything it cannot read, never anything
else. Cut from framing.py (which frames the packets); session.py and accounting.py use these.
Protocol reference: https://mariadb.com/kb/en/clientserver-protocol/ (handshake, OK/ERR/EOF).
"""
import builtins
from typing import Dict, NamedTuple, Optional, Tuple

from fiswatch.lab.wire.framing import (CLIENT_CONNECT_ATTRS, CLIENT_CONNECT_WITH_DB, CLIENT_PLUGIN_AUTH, CLIENT_PLUGIN_AUTH_LENENC, CLIENT_PROTOCOL_41, CLIENT_SECURE_CONNECTION, CLIENT_SSL, Malformed)


class _Reader:
    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.pos, self.what = data, 0, what

    def left(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise Malformed("%s: %d bytes wanted at offset %d of %d" % (self.what, n, self.pos, len(self.data)))
        piece = self.data[self.pos:self.pos + n]
        self.pos += n
        return piece

    def int(self, n: builtins.int) -> builtins.int:
        return builtins.int.from_bytes(self.take(n), "little")

    def lenenc(self) -> builtins.int:
        first = self.int(1)
        if first < 0xFB:
            return first
        if first == 0xFC:
            return self.int(2)
        if first == 0xFD:
            return self.int(3)
        if first == 0xFE:
            return self.int(8)
        raise Malformed("%s: bad length-encoded integer 0x%02x at offset %d" % (self.what, first, self.pos - 1))

    def lenenc_bytes(self) -> bytes:
        return self.take(self.lenenc())

    def cstring(self) -> bytes:
        nul = self.data.find(b"\x00", self.pos)
        if nul < 0:
            raise Malformed("%s: unterminated string at offset %d" % (self.what, self.pos))
        piece = self.data[self.pos:nul]
        self.pos = nul + 1
        return piece


def _text(raw: bytes, limit: int = 256) -> str:
    return raw[:limit].decode("utf-8", "replace")


class Greeting(NamedTuple):
    protocol: int
    server_version: str
    connection_id: int
    capabilities: int


def parse_greeting(payload: bytes) -> Greeting:
    """The server's first packet (protocol 10).

    >>> g = parse_greeting(b"\\x0a10.11.6\\x00" + (7).to_bytes(4, "little") + b"a" * 8 + b"\\x00"
    ...                    + b"\\xff\\xf7" + b"\\x08\\x02\\x00\\xff\\x81" + b"\\x15" + b"\\x00" * 10)
    >>> g.server_version, g.connection_id, bool(g.capabilities & CLIENT_PROTOCOL_41)
    ('10.11.6', 7, True)
    """
    r = _Reader(payload, "server greeting")
    protocol = r.int(1)
    if protocol == 0xFF:
        raise Malformed("server refused the connection at greeting")
    if protocol != 10:
        raise Malformed("server greeting protocol %d, not 10" % protocol)
    version = r.cstring()
    conn_id = r.int(4)
    r.take(8)
    r.take(1)
    caps = r.int(2)
    if r.left() >= 3:
        r.take(1)
        r.take(2)
        caps |= r.int(2) << 16 if r.left() >= 2 else 0
    return Greeting(protocol, _text(version), conn_id, caps)


class HandshakeResponse(NamedTuple):
    capabilities: int
    ssl_request: bool
    user: str
    database: str
    attributes: Dict[str, str]


def parse_handshake_response(payload: bytes) -> HandshakeResponse:
    """The client's answer to the greeting, or its SSL request (32 bytes, CLIENT_SSL set).

    >>> p = ((CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_CONNECT_WITH_DB | CLIENT_CONNECT_ATTRS)
    ...      .to_bytes(4, "little") + b"\\x00\\x00\\x00\\x01" + b"\\x21" + b"\\x00" * 23 + b"app\\x00"
    ...      + b"\\x00" + b"testdb\\x00" + b"\\x09" + b"\\x04_pid" + b"\\x03" + b"123")
    >>> h = parse_handshake_response(p)
    >>> h.user, h.database, h.attributes, h.ssl_request
    ('app', 'testdb', {'_pid': '123'}, False)
    """
    r = _Reader(payload, "client handshake")
    if r.left() < 4:
        raise Malformed("client handshake of %d bytes" % r.left())
    caps = r.int(4)
    if not caps & CLIENT_PROTOCOL_41:
        raise Malformed("client handshake without CLIENT_PROTOCOL_41 (pre-4.1 protocol)")
    r.take(4)  # max packet size
    r.take(1)  # charset
    r.take(23)
    if r.left() == 0:
        if caps & CLIENT_SSL:
            return HandshakeResponse(caps, True, "", "", {})
        raise Malformed("client handshake ends before the user name")
    user = r.cstring()
    if caps & CLIENT_PLUGIN_AUTH_LENENC:
        r.lenenc_bytes()
    elif caps & CLIENT_SECURE_CONNECTION:
        r.take(r.int(1))
    else:
        r.cstring()
    database = b""
    if caps & CLIENT_CONNECT_WITH_DB and r.left():
        database = r.cstring()
    if caps & CLIENT_PLUGIN_AUTH and r.left():
        r.cstring()
    attributes: Dict[str, str] = {}
    if caps & CLIENT_CONNECT_ATTRS and r.left():
        block = _Reader(r.lenenc_bytes(), "connection attributes")
        while block.left() and len(attributes) < 64:
            key = block.lenenc_bytes()
            attributes[_text(key, 64)] = _text(block.lenenc_bytes())
    return HandshakeResponse(caps, False, _text(user, 128), _text(database, 128), attributes)


class Answer(NamedTuple):
    """The first packet of the server's answer to a command."""
    kind: str  # "ok", "err", "eof", "result", "infile"
    affected_rows: int = 0
    last_insert_id: int = 0
    status: int = 0
    error_code: int = 0
    message: str = ""


def parse_answer(payload: bytes, capabilities: int = CLIENT_PROTOCOL_41) -> Answer:
    """OK, ERR, EOF, LOCAL INFILE request, or the column count that starts a result set.

    >>> parse_answer(b"\\x00\\x01\\x2a\\x02\\x00\\x00\\x00")
    Answer(kind='ok', affected_rows=1, last_insert_id=42, status=2, error_code=0, message='')
    >>> parse_answer(b"\\xff\\x0a\\x05#HY000The MariaDB server is running with the --read-only option").error_code
    1290
    >>> parse_answer(b"\\x02").kind
    'result'
    """
    if not payload:
        raise Malformed("empty answer packet")
    first = payload[0]
    if first == 0x00 and len(payload) >= 7:
        fast = _ok_fast(payload, capabilities)
        if fast is not None:
            return fast
    r = _Reader(payload, "answer")
    r.take(1)
    if first == 0x00 and len(payload) >= 7:
        affected, insert_id = r.lenenc(), r.lenenc()
        status = r.int(2) if capabilities & CLIENT_PROTOCOL_41 and r.left() >= 2 else 0
        return Answer("ok", affected, insert_id, status)
    if first == 0xFF:
        code = r.int(2)
        message = payload[3:]
        if message[:1] == b"#":
            message = message[6:]
        return Answer("err", error_code=code, message=_text(message, 200))
    if first == 0xFE and len(payload) < 9:
        status = 0
        if len(payload) >= 5:
            r.take(2)
            status = r.int(2)
        return Answer("eof", status=status)
    if first == 0xFB:
        return Answer("infile")
    if first == 0x00:
        raise Malformed("OK packet of %d bytes" % len(payload))
    r.pos = 0
    columns = r.lenenc()
    if columns == 0:
        raise Malformed("result set with 0 columns")
    return Answer("result", affected_rows=0)


def _ok_fast(payload: bytes, capabilities: int) -> Optional[Answer]:
    """The common OK (affected rows and insert id below 65536) without a reader object; None: read it in full.

    >>> _ok_fast(b"\\x00\\x01\\xfc\\x39\\x30\\x02\\x00\\x00\\x00", CLIENT_PROTOCOL_41)
    Answer(kind='ok', affected_rows=1, last_insert_id=12345, status=2, error_code=0, message='')
    """
    n, pos, values = len(payload), 1, []
    for _ in (0, 1):
        b = payload[pos]
        if b < 0xFB:
            values.append(b)
            pos += 1
        elif b == 0xFC and pos + 3 <= n:
            values.append(payload[pos + 1] | payload[pos + 2] << 8)
            pos += 3
        else:
            return None
    status = 0
    if capabilities & CLIENT_PROTOCOL_41 and n - pos >= 2:
        status = payload[pos] | payload[pos + 1] << 8
    return Answer("ok", values[0], values[1], status)


def parse_prepare_ok(payload: bytes) -> Tuple[int, int, int]:
    """(statement id, columns, parameters) from the OK answer to COM_STMT_PREPARE."""
    r = _Reader(payload, "prepare answer")
    if r.int(1) != 0:
        raise Malformed("prepare answer does not start with 0x00")
    return r.int(4), r.int(2), r.int(2)


def statement_id(payload: bytes) -> int:
    """The statement id of a COM_STMT_EXECUTE / CLOSE / RESET / SEND_LONG_DATA payload."""
    r = _Reader(payload, "statement command")
    r.take(1)
    return r.int(4)
