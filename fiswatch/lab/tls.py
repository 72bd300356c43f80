"""TLS termination in the lab's proxies, as an RDS/Aurora instance offers (or requires) it.

One `TlsSession` per proxied connection sits between the client's socket and everything else the
proxy does (the Aurora query answers, the faults): it sees the raw bytes both ways and hands on
plaintext. The server behind the proxy runs with `--skip-ssl`; the client sees an instance that
speaks TLS with the certificate of the instance the proxy fronts.

The MySQL handshake, as far as TLS needs it (https://dev.mysql.com/doc/dev/mysql-server/latest/
page_protocol_connection_phase.html):
  server -> client  greeting (seq 0): the proxy sets CLIENT_SSL in its capability flags
  client -> server  either its handshake response (seq 1, no CLIENT_SSL): plaintext from here on
                    (refused with 3159 under `require`), or an SSL request (seq 1, 32 bytes,
                    CLIENT_SSL), then the TLS handshake, then its handshake response (seq 2) inside TLS
  the proxy         consumes the SSL request, runs TLS (ssl.MemoryBIO + SSLObject), and forwards the
                    decrypted handshake response with CLIENT_SSL cleared and its sequence id one lower;
                    until the server's OK/ERR ends authentication it renumbers the packets both ways
                    (server -> client +1, client -> server -1); after that, bytes pass as they are
                    (decrypted towards the server, encrypted towards the client).
A session that never sends a greeting we recognise (an ERR before it, garbage) passes bytes through.
"""
import ssl
from typing import Callable, List, Optional

CLIENT_SSL = 0x800
OFFERED = "offered"
REQUIRED = "required"
POLICIES = (OFFERED, REQUIRED)
ER_SECURE_TRANSPORT_REQUIRED = 3159
SECURE_TRANSPORT_MESSAGE = b"Connections using insecure transport are prohibited while --require_secure_transport=ON."

Send = Callable[[bytes], None]


def server_context(cert_path: str, key_path: str) -> ssl.SSLContext:
    """The server-side context of one proxy: its instance's certificate chain and key."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_path, key_path)
    return ctx


def err_packet(seq: int, code: int, message: bytes, state: bytes = b"HY000") -> bytes:
    """A MySQL ERR packet.

    >>> err_packet(2, 3159, b'no')[:9]
    b'\\x0b\\x00\\x00\\x02\\xffW\\x0c#H'
    """
    payload = b"\xff" + code.to_bytes(2, "little") + b"#" + state + message
    return len(payload).to_bytes(3, "little") + bytes((seq & 0xFF,)) + payload


class _Packets:
    """Split a byte stream into whole MySQL packets (header + payload); keeps the rest."""

    def __init__(self) -> None:
        self.buf = b""

    def feed(self, data: bytes) -> List[bytes]:
        self.buf += data
        out = []
        while len(self.buf) >= 4:
            length = int.from_bytes(self.buf[:3], "little")
            if len(self.buf) < 4 + length:
                break
            out.append(self.buf[:4 + length])
            self.buf = self.buf[4 + length:]
        return out

    def take_rest(self) -> bytes:
        rest, self.buf = self.buf, b""
        return rest


def _reseq(packet: bytes, delta: int) -> bytes:
    return packet[:3] + bytes(((packet[3] + delta) & 0xFF,)) + packet[4:]


def _greeting_caps_offset(payload: bytes) -> Optional[int]:
    """Where the lower capability flags of a protocol-10 greeting start, None if not one."""
    if not payload or payload[0] != 10:
        return None
    end = payload.find(b"\x00", 1)
    if end < 0:
        return None
    offset = end + 1 + 4 + 8 + 1  # server version NUL, connection id, auth data part 1, filler
    return offset if len(payload) >= offset + 2 else None


class TlsSession:
    """The TLS layer of one proxied connection.

    from_client(raw) -> plaintext for the server; from_server(plain) -> bytes for the client.
    Bytes the layer itself must send to the client (TLS handshake records, the 3159 error) go
    through `send_client`; `close` ends the connection (after a refusal)."""

    def __init__(self, ctx: ssl.SSLContext, policy: str, send_client: Send, close: Callable[[], None]) -> None:
        if policy not in POLICIES:
            raise ValueError("TLS policy must be one of %s, not %r" % (", ".join(POLICIES), policy))
        self.ctx, self.policy = ctx, policy
        self.send_client, self.close = send_client, close
        self.stage = "greeting"  # greeting -> first -> (tls-handshake) -> auth -> open | plain
        self.tls: Optional[ssl.SSLObject] = None
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self._server_packets = _Packets()
        self._client_packets = _Packets()
        self.version: Optional[str] = None  # negotiated, once the handshake is done
        self.cipher: Optional[str] = None
        self.refused = False

    # --- server -> client -----------------------------------------------------------------------
    def from_server(self, data: bytes) -> bytes:
        if self.stage == "greeting":
            packets = self._server_packets.feed(data)
            if not packets:
                return b""
            first = packets[0]
            offset = _greeting_caps_offset(first[4:])
            if offset is None:  # an ERR instead of a greeting, or not MySQL: stay out of the way
                self.stage = "plain"
                return b"".join(packets) + self._server_packets.take_rest()
            at = 4 + offset
            caps = int.from_bytes(first[at:at + 2], "little") | CLIENT_SSL
            first = first[:at] + caps.to_bytes(2, "little") + first[at + 2:]
            self.stage = "first"
            return first + b"".join(packets[1:]) + self._server_packets.take_rest()
        if self.stage == "auth":
            out = []
            for packet in self._server_packets.feed(data):
                out.append(_reseq(packet, +1))
                if len(packet) > 4 and packet[4] in (0x00, 0xFF):  # OK or ERR: authentication is over
                    self.stage = "open"
                    rest = self._server_packets.take_rest()
                    if rest:
                        out.append(rest)
                    break
            return self._encrypt(b"".join(out))
        if self.tls is not None:
            return self._encrypt(data)
        return data

    # --- client -> server -----------------------------------------------------------------------
    def from_client(self, data: bytes) -> bytes:
        if self.refused:
            return b""
        if self.stage == "first":
            return self._first(data)
        if self.tls is None:
            return data  # plaintext session (or nothing negotiated yet)
        return self._tls_in(data)

    def _tls_in(self, data: bytes) -> bytes:
        """Decrypt what the client sent; during authentication, renumber its packets."""
        plain = self._decrypt(data)
        if self.stage not in ("response", "auth"):
            return plain
        out = []
        for packet in self._client_packets.feed(plain):
            if self.stage == "response":  # the handshake response: the server must not see CLIENT_SSL
                flags = int.from_bytes(packet[4:8], "little") & ~CLIENT_SSL
                packet = packet[:4] + flags.to_bytes(4, "little") + packet[8:]
                self.stage = "auth"
            if self.stage == "auth":
                out.append(_reseq(packet, -1))
            else:
                out.append(packet)
        if self.stage == "open":
            out.append(self._client_packets.take_rest())
        return b"".join(out)

    def _first(self, data: bytes) -> bytes:
        packets = self._client_packets.feed(data)
        if not packets:
            return b""
        first = packets[0]
        flags = int.from_bytes(first[4:8], "little") if len(first) >= 8 else 0
        if not flags & CLIENT_SSL:
            if self.policy == REQUIRED:
                self.refused = True
                self.send_client(err_packet(first[3] + 1, ER_SECURE_TRANSPORT_REQUIRED, SECURE_TRANSPORT_MESSAGE))
                self.close()
                return b""
            self.stage = "plain"
            return b"".join(packets) + self._client_packets.take_rest()
        self.stage = "tls-handshake"
        self.tls = self.ctx.wrap_bio(self._in, self._out, server_side=True)
        rest = b"".join(packets[1:]) + self._client_packets.take_rest()
        return self._tls_in(rest)

    # --- TLS ------------------------------------------------------------------------------------
    def _handshake(self) -> bytes:
        assert self.tls is not None
        try:
            self.tls.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            return b""
        except ssl.SSLError:
            self._flush()  # the alert, if any
            self.refused = True
            self.close()
            return b""
        self._flush()
        self.version = self.tls.version()
        cipher = self.tls.cipher()
        self.cipher = cipher[0] if cipher else None
        self.stage = "response"
        return b""

    def _decrypt(self, data: bytes) -> bytes:
        assert self.tls is not None
        if data:
            self._in.write(data)
        if self.stage == "tls-handshake":
            self._handshake()
            if self.stage == "tls-handshake" or self.refused:
                return b""
        chunks = []
        while True:
            try:
                chunk = self.tls.read(65536)
            except ssl.SSLWantReadError:
                break
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                break
            except ssl.SSLError:
                self.refused = True
                self.close()
                break
            if not chunk:
                break
            chunks.append(chunk)
        self._flush()
        return b"".join(chunks)

    def _encrypt(self, data: bytes) -> bytes:
        if self.tls is None or not data:
            return data
        self.tls.write(data)
        return self._out.read()

    def _flush(self) -> None:
        pending = self._out.read()
        if pending:
            self.send_client(pending)


def session_factory(cert_path: str, key_path: str, policy: str) -> Callable[[Send, Callable[[], None]], TlsSession]:
    """What a FaultProxy takes as `tls`: one context per proxy, one session per connection."""
    ctx = server_context(cert_path, key_path)
    return lambda send_client, close: TlsSession(ctx, policy, send_client, close)
