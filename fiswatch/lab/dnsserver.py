"""A tiny authoritative DNS server on loopback (dnspython for the wire format).

The zone holds CNAME and A records. A name can be "blanked" for a failover window
(NOERROR with no answer, or NXDOMAIN) and a CNAME can flap between several targets, as
resolvers were seen to do after an Aurora flip (Route 53's servers answer old or new
until the change has reached all of them). Each query of a flapping name picks a target
at random, never the same one more than FLAP_RUN times in a row for one (name, query
type): so every resolver sees the flap, whatever it asks. glibc's getaddrinfo asks A and
AAAA for each lookup; a single counter shared by all queries gave each of its A queries
the same parity, the same instance for the whole flap.
Runs on a `ProxyLoop` (UDP and TCP); the zone is changed from any thread.
"""
import asyncio
import errno
import random
import socket
import struct
import threading
import time
from dataclasses import dataclass, replace
from typing import Any, Dict, Optional, Sequence, Tuple

from fiswatch.lab.proxy import ProxyLoop


@dataclass(frozen=True)
class Record:
    kind: str  # 'A' | 'CNAME'
    values: Tuple[str, ...]  # addresses or target names; several = flapping
    ttl: int = 5
    blank: Optional[str] = None  # None | 'empty' | 'nxdomain'
    flap_until: Optional[float] = None  # time.time() after which only values[-1] is served
    spread: bool = False  # several values: a random one per query (a reader endpoint), never flapping


FLAP_RUN = 3  # a flapping name gives one (name, type) the same answer at most this many times in a row


class Zone:
    """Records by lower-case name without trailing dot. Thread-safe, copy-on-write.

    `also`: more zones this server answers (the lab's old `.lab.rds.local` names, as aliases)."""

    def __init__(self, origin: str, seed: Optional[int] = None, also: Tuple[str, ...] = ()) -> None:
        self.origin = origin.lower().rstrip(".")
        self.origins = (self.origin,) + tuple(o.lower().rstrip(".") for o in also)
        self._records: Dict[str, Record] = {}
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._runs: Dict[Tuple[str, int], Tuple[str, int]] = {}  # (name, qtype) -> (last answer, times in a row)

    def set(self, name: str, kind: str, values: Tuple[str, ...], ttl: int = 5,
            flap_until: Optional[float] = None, spread: bool = False) -> None:
        key = name.lower().rstrip(".")
        with self._lock:
            records = dict(self._records)
            records[key] = Record(kind, tuple(v.lower().rstrip(".") if kind == "CNAME" else v for v in values),
                                  ttl, None, flap_until, spread)
            self._records = records

    def blank(self, name: str, style: Optional[str]) -> None:
        """Answer `name` empty ('empty'), NXDOMAIN ('nxdomain') or normally again (None)."""
        if style not in (None, "empty", "nxdomain"):
            raise ValueError("dns blank style must be 'empty' or 'nxdomain', got %r" % style)
        key = name.lower().rstrip(".")
        with self._lock:
            records = dict(self._records)
            records[key] = replace(records[key], blank=style)
            self._records = records

    def update(self, changes: Sequence[Dict[str, Any]]) -> None:
        """Several records changed in one swap: a query sees all of them or none (a Blue/Green
        rename). Each change: {"name", "kind", "values"[, "ttl"]} sets a record, {"name", "blank"}
        blanks one ('empty', 'nxdomain' or None: answers again). Checked whole before any applies.

        >>> zone = Zone("lab.rds.local")
        >>> zone.set("a.lab.rds.local", "A", ("127.0.0.1",))
        >>> zone.update([{"name": "a.lab.rds.local", "kind": "A", "values": ["127.0.0.2"]},
        ...              {"name": "b.lab.rds.local", "blank": "nxdomain"}])
        Traceback (most recent call last):
        ...
        KeyError: 'b.lab.rds.local'
        >>> zone.get("a.lab.rds.local").values
        ('127.0.0.1',)
        """
        with self._lock:
            records = dict(self._records)
            for change in changes:
                key = str(change["name"]).lower().rstrip(".")
                if "blank" in change:
                    if change["blank"] not in (None, "empty", "nxdomain"):
                        raise ValueError("dns blank style must be 'empty' or 'nxdomain', got %r" % change["blank"])
                    records[key] = replace(records[key], blank=change["blank"])
                    continue
                kind = str(change["kind"])
                records[key] = Record(kind, tuple(v.lower().rstrip(".") if kind == "CNAME" else str(v)
                                                  for v in change["values"]), int(change.get("ttl", 5)))
            self._records = records

    def get(self, name: str) -> Optional[Record]:
        return self._records.get(name.lower().rstrip("."))

    def snapshot(self) -> Dict[str, Record]:
        return dict(self._records)

    def pick(self, record: Record, name: str = "", qtype: int = 0) -> str:
        """The value served now to a query of type `qtype` that reached `name`.

        A flapping record (until flap_until) answers one of its values at random, and never
        the same one more than FLAP_RUN times in a row for the same (name, qtype), so any
        client that asks a few times sees every value, A and AAAA lookups alike. A spread
        record (a reader endpoint) answers one of its values at random, always.

        >>> zone = Zone("lab.rds.local", seed=1)
        >>> flap = Record("CNAME", ("old", "new"), flap_until=time.time() + 60)
        >>> seen = [zone.pick(flap, "db", 1) for _ in range(FLAP_RUN + 1)]
        >>> sorted(set(seen))
        ['new', 'old']
        >>> zone.pick(Record("CNAME", ("old", "new"), flap_until=time.time() - 1), "db", 1)
        'new'
        """
        if record.spread and len(record.values) > 1:
            with self._lock:
                return self._rng.choice(record.values)
        if len(record.values) == 1 or (record.flap_until is not None and time.time() >= record.flap_until):
            return record.values[-1]
        key = (name, int(qtype))
        with self._lock:
            last, run = self._runs.get(key, ("", 0))
            choices = record.values
            if run >= FLAP_RUN and last in choices:
                choices = tuple(v for v in choices if v != last)
            value = self._rng.choice(choices)
            self._runs[key] = (value, run + 1 if value == last else 1)
        return value

    def in_zone(self, name: str) -> bool:
        name = name.lower().rstrip(".")
        return any(name == o or name.endswith("." + o) for o in self.origins)

    def alias(self, aliases: Dict[str, str], ttl: int = 5) -> None:
        """A CNAME alias -> name for each name the zone holds (old names that keep working)."""
        for old, new in aliases.items():
            if self.get(new) is not None:
                self.set(old, "CNAME", (new,), ttl=ttl)


def answer(zone: Zone, wire: bytes) -> Optional[bytes]:
    """The response to one query in wire format (None for garbage)."""
    import dns.flags
    import dns.message
    import dns.rcode
    import dns.rdataclass
    import dns.rdatatype
    import dns.rrset

    try:
        query = dns.message.from_wire(wire)
    except Exception:  # noqa: BLE001
        return None
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AA
    if not query.question:
        response.set_rcode(dns.rcode.FORMERR)
        return response.to_wire()
    question = query.question[0]
    qname = question.name.to_text().lower().rstrip(".")
    if not zone.in_zone(qname):
        response.set_rcode(dns.rcode.REFUSED)
        return response.to_wire()
    name, hops = qname, 0
    while hops < 8:
        hops += 1
        record = zone.get(name)
        if record is None:
            if hops == 1:
                response.set_rcode(dns.rcode.NXDOMAIN)
            break
        if record.blank == "nxdomain":
            if hops == 1:
                response.set_rcode(dns.rcode.NXDOMAIN)
            break
        if record.blank == "empty":
            break
        value = zone.pick(record, name, question.rdtype)
        if record.kind == "CNAME":
            response.answer.append(dns.rrset.from_text(name + ".", record.ttl, "IN", "CNAME", value + "."))
            if question.rdtype == dns.rdatatype.CNAME:
                break
            name = value
            continue
        if question.rdtype in (dns.rdatatype.A, dns.rdatatype.ANY):
            response.answer.append(dns.rrset.from_text(name + ".", record.ttl, "IN", "A", value))
        break
    return response.to_wire()


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, zone: Zone) -> None:
        self.zone = zone
        self.transport: Optional[asyncio.DatagramTransport] = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Tuple[str, int]) -> None:
        reply = answer(self.zone, data)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


class DnsServer:
    """Serves `zone` over UDP and TCP on (host, port) of loopback."""

    def __init__(self, zone: Zone, host: str, port: int, loop: ProxyLoop) -> None:
        self.zone = zone
        self.host, self.port = host, int(port)
        self._ploop = loop
        self._udp: Optional[asyncio.BaseTransport] = None
        self._tcp: Optional[asyncio.AbstractServer] = None

    @property
    def address(self) -> Tuple[str, int]:
        return (self.host, self.port)

    def start(self) -> "DnsServer":
        # port 0: the kernel picks a free UDP port, whose TCP twin may be in use; try a few
        for attempt in range(20 if self.port == 0 else 1):
            try:
                udp, tcp = self._bind()
                break
            except OSError as exc:
                if self.port == 0 and exc.errno == errno.EADDRINUSE and attempt < 19:
                    continue
                raise OSError(exc.errno, "DNS server cannot listen on %s:%d: %s; stop whatever uses it or "
                              "choose another --dns-port" % (self.host, self.port, exc.strerror or exc)) from None
        self.port = udp.getsockname()[1]
        self._ploop.call(self._serve, udp, tcp)
        return self

    def _bind(self) -> Tuple[socket.socket, socket.socket]:
        """A UDP and a TCP socket on the same port (self.port, or one the kernel picks)."""
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # not on UDP: it would share the port
            udp.bind((self.host, self.port))
            tcp.bind((self.host, udp.getsockname()[1]))
            tcp.listen(16)
            udp.setblocking(False)
            tcp.setblocking(False)
        except OSError:
            udp.close()
            tcp.close()
            raise
        return udp, tcp

    async def _serve(self, udp: socket.socket, tcp: socket.socket) -> None:
        loop = asyncio.get_event_loop()
        self._udp, _ = await loop.create_datagram_endpoint(lambda: _Udp(self.zone), sock=udp)
        self._tcp = await asyncio.start_server(self._tcp_client, sock=tcp)

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readexactly(2)
                data = await reader.readexactly(struct.unpack("!H", head)[0])
                reply = answer(self.zone, data)
                if reply is None:
                    break
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def stop(self) -> None:
        def close() -> None:
            if self._udp is not None:
                self._udp.close()
                self._udp = None
            if self._tcp is not None:
                self._tcp.close()
                self._tcp = None

        if self._ploop.running:
            self._ploop.call(close)


STANDARD_PORT = 53


def start_on_standard_port(zone: Zone, host: str, loop: ProxyLoop) -> Tuple[Optional[DnsServer], str]:
    """A second listener on port 53 of `host`, for resolvers that cannot name a port.

    /etc/resolv.conf has no port field, so `fiswatch lab exec` needs the lab's DNS server on
    port 53 of its own loopback address. Returns (server, "") or (None, why it cannot bind).
    """

    try:
        return DnsServer(zone, host, STANDARD_PORT, loop).start(), ""
    except OSError as exc:
        if exc.errno == errno.EACCES:
            return None, ("binding port 53 needs root (or sysctl net.ipv4.ip_unprivileged_port_start=53) "
                          "when the lab starts")
        if exc.errno == errno.EADDRINUSE:
            return None, "port 53 of %s is taken by another program" % host
        return None, "cannot listen on %s port 53: %s" % (host, exc)
