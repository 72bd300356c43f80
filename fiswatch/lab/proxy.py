"""A fault-injecting TCP proxy: pass, blackhole, reset, refuse, latency.

Every proxy runs on an asyncio event loop owned by a `ProxyLoop` (one background daemon
thread). Several proxies can share one loop (the lab daemon hosts four); a proxy created
without a loop gets a private one that stops with it. The public methods are called from
any thread except the loop's own and wait until the change is in effect.

Modes:
  pass       forward bytes both ways.
  blackhole  fence every open connection for good (bytes both ways are read and dropped,
             sockets stay open: no FIN, no RST) and accept-and-fence new ones. Back in
             `pass`, new connections work and fenced ones stay dead, as after an Aurora
             failover.
  reset      close open connections with RST; accept new ones and reset them at once.
  refuse     stop listening (connect gets ECONNREFUSED) and reset open connections;
             `pass` listens again on the same address.
  latency    forward, delaying each chunk by `latency` seconds.
  offline    as MySQL's offline_mode (MariaDB has none): open connections closed, new ones get
             ERR 3032 as their first packet (a Blue/Green switchover, lab/switchover.py).

Layers (docs: /work/shared/docs/design-notes.md, "The lab's proxy"): this module is the
transport (sockets and fault modes). A proxy given `session` (a factory called with the
client's (host, port) when it connects, returning a wire.session.Session or None) hands the
session every chunk it forwards, both ways: the session frames the MySQL packets
(wire/framing.py) and calls its behaviours (accounting, the Aurora query rewriter). What the
client sends is forwarded as `session.from_client` returns it (the same bytes unless a rewriter
changed a packet); what the server sends is forwarded as it is, then observed (never delayed by
the session), and so is what the client sends to a session without a rewriter.
`rewriter` (a factory of aurora.QueryRewriter-like objects) is a shorthand for a session with
that rewriter and no other behaviour.
A proxy given `tls` (fiswatch/lab/tls.py `session_factory`) terminates TLS under the session:
each connection's TLS layer turns the client's raw bytes into plaintext before the session and
the faults see them, and encrypts what goes back.
"""
import asyncio
import socket
from typing import Any, Callable, Optional, Set, Tuple

from fiswatch.lab.loop import ProxyLoop
from fiswatch.lab.proxy_conn import Connection, Side, abort_with_rst
from fiswatch.lab.rdsproxy_wire import err_packet

MODES = ("pass", "blackhole", "reset", "refuse", "latency", "offline")
OFFLINE_ERR = err_packet(0, 3032, "The server is currently in offline mode")  # MySQL's ER_SERVER_OFFLINE_MODE
_CHUNK = 65536


def _rewriting_session(rewriter: Callable[[], Any]) -> Callable[[Tuple[str, int]], Any]:
    from fiswatch.lab.wire.session import Session

    return lambda peer: Session(rewriter=rewriter())


class FaultProxy:
    """A TCP proxy from (listen_host, listen_port) to (target_host, target_port) with faults."""

    def __init__(self, listen_host: str, listen_port: int, target_host: str, target_port: int,
                 name: str = "", loop: Optional[ProxyLoop] = None,
                 rewriter: Optional[Callable[[], Any]] = None,
                 session: Optional[Callable[[Tuple[str, int]], Any]] = None,
                 tls: Optional[Callable[..., Any]] = None) -> None:
        self.name = name or "%s:%d" % (listen_host, listen_port)
        if session is None and rewriter is not None:
            session = _rewriting_session(rewriter)
        self._session = session
        self._tls = tls
        self._listen = (listen_host, int(listen_port))
        self._target = (target_host, int(target_port))
        self._own_loop = loop is None
        self._ploop = loop if loop is not None else ProxyLoop("fiswatch-proxy-" + self.name)
        self._mode = "pass"
        self._latency = 0.0
        self._bound: Optional[Tuple[str, int]] = None
        self._server: Optional[asyncio.AbstractServer] = None
        self._conns: Set[Connection] = set()
        self._stopped = False

    # --- public API ----------------------------------------------------------------
    mode = property(lambda self: self._mode, doc="the current mode")
    tls = property(lambda self: self._tls, doc="the TLS layer factory of new connections (lab/tls.py) or None")
    latency = property(lambda self: self._latency, doc="seconds added per chunk in `latency` mode")

    @property
    def address(self) -> Tuple[str, int]:
        return self._listen if self._bound is None else self._bound

    target = property(lambda self: self._target, doc="(host, port) new connections go to")

    def connection_count(self) -> int:
        return len(self._conns)

    def start(self) -> "FaultProxy":
        """Bind now (OSError with a clear message if the address is taken) and serve."""
        sock = self._bind(self._listen[1])
        self._bound = sock.getsockname()[:2]
        self._stopped = False
        try:
            self._ploop.call(self._serve, sock)
        except BaseException:
            sock.close()
            raise
        return self

    def stop(self) -> None:
        """Close the listener and every connection. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        if self._ploop.running:
            try:
                self._ploop.call(self._stop_in_loop)
            except RuntimeError:
                pass
        if self._own_loop:
            self._ploop.stop()

    def set_mode(self, mode: str, latency: float = 0.0) -> None:
        if mode not in MODES:
            raise ValueError("unknown proxy mode %r: use one of %s" % (mode, ", ".join(MODES)))
        if latency < 0:
            raise ValueError("latency must be >= 0 seconds, got %r" % latency)
        sock = None
        if mode != "refuse" and self._server is None and not self._stopped:
            sock = self._bind(self.address[1])  # listen again on the same address
        self._ploop.call(self._set_mode_in_loop, mode, float(latency), sock)

    def set_target(self, host: str, port: int) -> None:
        """Send NEW connections to host:port (open ones keep their server)."""
        self._target = (host, int(port))

    __enter__ = start

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        return "FaultProxy(%s %s:%d -> %s:%d mode=%s)" % (
            self.name, self.address[0], self.address[1], self._target[0], self._target[1], self._mode)

    # --- internals -----------------------------------------------------------------
    def _bind(self, port: int) -> socket.socket:
        host = self._listen[0]
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(128)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise OSError(exc.errno, "proxy %s cannot listen on %s:%d: %s; stop whatever uses that "
                          "address or choose another port" % (self.name, host, port, exc.strerror or exc)) from None
        return sock

    async def _serve(self, sock: socket.socket) -> None:
        loop = asyncio.get_event_loop()
        self._server = await loop.create_server(self._accept, sock=sock)

    def _accept(self) -> Side:
        conn = Connection(self)
        self._conns.add(conn)
        return conn.client

    def client_connected(self, conn: Connection) -> None:
        """A client's socket is up (the loop's thread; lab/proxy_conn.py): its session, then the mode's answer."""
        mode = self._mode
        if self._session is not None and mode not in ("reset", "refuse") and not self._stopped:
            peer = conn.client.transport.get_extra_info("peername") if conn.client.transport else None
            try:
                conn.session = self._session(tuple(peer[:2]) if peer else ("", 0))
            except Exception:  # noqa: BLE001
                conn.session = None  # accounting must never cost the client its connection
        if self._stopped:
            conn.close()
        elif mode == "blackhole":
            conn.fence()
        elif mode in ("reset", "refuse"):
            conn.reset()
        elif mode == "offline" and conn.client.transport is not None:
            conn.client.transport.write(OFFLINE_ERR)
            conn.close()
        else:
            asyncio.ensure_future(self._connect_upstream(conn))

    async def _connect_upstream(self, conn: Connection) -> None:
        loop = asyncio.get_event_loop()
        host, port = self._target
        side = Side(conn, upstream=True)
        conn.server = side
        try:
            await loop.create_connection(lambda: side, host, port)
        except OSError:
            conn.reset()  # the client sees the connection reset, as from a dead server
            return
        if conn.closed:
            abort_with_rst(side.transport)
            return
        if conn.fenced:
            return
        conn.upstream_ready()

    def forget(self, conn: Connection) -> None:
        """A connection ended (the loop's thread; lab/proxy_conn.py)."""
        self._conns.discard(conn)

    def _close_listener(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def _set_mode_in_loop(self, mode: str, latency: float, sock: Optional[socket.socket]) -> None:
        self._mode = mode
        self._latency = latency if mode == "latency" else 0.0
        if mode == "blackhole":
            for conn in list(self._conns):
                conn.fence()
        elif mode in ("reset", "refuse"):
            for conn in list(self._conns):
                conn.reset()
            if mode == "refuse":
                self._close_listener()
        elif mode == "offline":
            for conn in list(self._conns):
                conn.close()
        if sock is not None:
            if self._server is None:
                await self._serve(sock)
            else:
                sock.close()

    async def _stop_in_loop(self) -> None:
        self._close_listener()
        for conn in list(self._conns):
            conn.close()
        self._conns.clear()
