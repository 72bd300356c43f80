"""The lab's RDS Proxy: endpoint `aurora-proxy` (`lab up --proxy`), docs/rdsproxy.md.

A MySQL-aware proxy in front of the lab's Aurora cluster (and one in front of RDS, `rds-proxy`,
`fiswatch-lab-mysql-proxy.proxy-...`, `.51`), at a stable address with its own name
(`fiswatch-lab.proxy-c0ffee0c0ffe.lab-1.rds.amazonaws.com`, shaped as AWS's `NAME.proxy-ID.REGION.rds.amazonaws.com`):
client sessions are its own (rdsproxy_session.py), server sessions go to whichever instance says it
is writable (rdsproxy_backend.py), never where DNS points. Runs on the lab's asyncio loop beside
the instance proxies (measured, docs/rdsproxy.md "Its own cost": a loop of its own costs two more thread
wake-ups per statement, more CPU and more latency on a loaded machine); `start`/`stop`/`stats` are
called from other threads.
"""
import asyncio
import itertools
import socket
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

from fiswatch.lab import layout as L
from fiswatch.lab import rdsproxy_wire as W
from fiswatch.lab.loop import ProxyLoop
from fiswatch.lab.rdsproxy_account import account_factory
from fiswatch.lab.rdsproxy_backend import Instance, WriterFollower
from fiswatch.lab.rdsproxy_client import ClientLink
from fiswatch.lab.rdsproxy_pool import Pool
from fiswatch.lab.rdsproxy_session import ClientSession
from fiswatch.lab.rdsproxy_tls import tls_for_lab

BORROW_TIMEOUT = 120.0  # seconds a statement waits for a writer: AWS's ConnectionBorrowTimeout default
CONNECT_TIMEOUT = 2.0  # seconds one login to the writer may take before the proxy tries again
MAX_SESSIONS = 5000  # client sessions at once; more are refused with 1040 (the lab's bound)
COUNTERS = ("sessions", "denied", "pinned", "failed_in_flight", "failed_sessions", "borrow_timeouts",
            "bad_input", "too_big", "refused", "writer_changes", "answers_paused")


class RdsProxy:
    def __init__(self, listen: Any, instances: Sequence[Instance], users: Dict[str, str], loop: ProxyLoop,
                 log: Callable[[str], None] = lambda line: None, borrow_timeout: float = BORROW_TIMEOUT,
                 connect_timeout: float = CONNECT_TIMEOUT, name: str = "aurora-proxy",
                 tls: Optional[Callable[..., Any]] = None, account: Optional[Callable[..., Any]] = None,
                 **follower: Any) -> None:
        self.listen = (listen[0], int(listen[1]))
        self.name = name
        self.instances = tuple(instances)
        self.users = dict(users)
        self.ploop = loop
        self.log = log
        self.borrow_timeout = float(borrow_timeout)
        self.connect_timeout = float(connect_timeout)
        self.tls = tls  # a TlsSession factory (lab/tls.py): TLS in front of every session (rdsproxy_client.py)
        self.local_host = self.listen[0]  # its server sessions come from its own address (the ledger tells them apart)
        self.account = account  # each client session's wire Session (rdsproxy_account.py), None: not accounted
        self.sessions: Set[ClientSession] = set()
        self.pool = Pool()
        self.counters = dict.fromkeys(COUNTERS, 0)
        self.follower: Optional[WriterFollower] = None
        self._follower_options = follower
        self._ids = itertools.count(1)
        self._server: Optional[asyncio.AbstractServer] = None
        self.companion: Optional["RdsProxy"] = None  # in a lab: the proxy in front of RDS, stopped with this one

    # --- from any thread but the loop's -----------------------------------------------------------
    def start(self) -> "RdsProxy":
        # IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say TCP, and a
        # result set of several packets would otherwise wait for the client's delayed ACK (40 ms)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(self.listen)
            sock.listen(512)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise OSError(exc.errno, "the lab's RDS Proxy cannot listen on %s:%d: %s"
                          % (self.listen[0], self.listen[1], exc.strerror or exc)) from None
        self.listen = sock.getsockname()[:2]
        try:
            self.ploop.call(self._serve, sock)
        except BaseException:
            sock.close()
            raise
        return self

    def stop(self) -> None:
        if self.ploop.running:
            try:
                self.ploop.call(self._stop_in_loop)
            except (RuntimeError, TimeoutError):
                pass
        if self.companion is not None:
            self.companion.stop()

    def stats(self) -> Dict[str, Any]:
        """What the daemon's state shows under `rds_proxy` (read on the loop); the companion's under `rds`."""
        stats = self._stats() if self.ploop.in_loop_thread() else self.ploop.call(self._stats)
        if self.companion is not None:
            stats["rds"] = self.companion.stats()
        return stats

    # --- on the loop --------------------------------------------------------------------------------
    async def _serve(self, sock: socket.socket) -> None:
        any_user = next(iter(self.users.items()))
        login = W.Login(W.PROXY_CAPS, 45, any_user[0], b"", "", W.NATIVE)
        self.follower = WriterFollower(self.instances, login, any_user[1], self._writer_changed,
                                       self.local_host, **self._follower_options)
        self.follower.start()
        self._server = await asyncio.get_event_loop().create_server(lambda: ClientLink(self.accept, self.tls),
                                                                    sock=sock)

    def accept(self, link: ClientLink) -> Optional[ClientSession]:
        """A client connected (ClientLink.connection_made): its session, greeting it, or None (refused, closed)."""
        if len(self.sessions) >= MAX_SESSIONS:
            self.count("refused")
            link.transport.write(W.err_packet(0, 1040, "Too many connections (the lab's RDS Proxy takes %d)"
                                              % MAX_SESSIONS))
            link.transport.close()
            return None
        session = ClientSession(self, link, next(self._ids))
        self.sessions.add(session)
        self.count("sessions")
        session.start()
        return session

    def _writer_changed(self, old: Optional[str], new: Optional[str]) -> None:
        self.count("writer_changes")
        self.log("rds proxy: writer %s" % ("%s found" % new if new else "%s lost: in-flight statements fail (1105), "
                                           "new ones wait for a writer" % old))
        self.pool.clear(self.generation)
        if new is None:
            for session in list(self.sessions):
                session.writer_changed(self.generation)

    def begin_patch(self, zdp: bool) -> Dict[str, int]:
        """Zero-downtime patching starts (lab/patch.py): each session's fate, counted; statements now wait."""
        outcomes: Dict[str, int] = {}
        if self.follower is not None:
            self.follower.hold()
        self.pool.clear(self.generation)
        for session in list(self.sessions):
            outcome = session.patched(zdp)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        return outcomes

    def end_patch(self) -> None:
        if self.follower is not None:
            self.follower.release()
        self.pool.clear(self.generation)

    async def _stop_in_loop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        if self.follower is not None:
            self.follower.stop()
        for session in list(self.sessions):
            session.close()

    def _stats(self) -> Dict[str, Any]:
        writer = self.follower.writer if self.follower else None
        return dict(self.counters, open=len(self.sessions), writer=writer.name if writer else None,
                    pinned_open=sum(1 for s in self.sessions if s.pinned), idle_server_sessions=len(self.pool),
                    busy_server_sessions=sum(1 for s in self.sessions if s.server is not None),
                    address=list(self.listen), borrow_timeout=self.borrow_timeout,
                    thread_cpu_s=round(time.thread_time(), 6))  # CPU of the loop's thread so far, shared (bench)

    # --- what sessions ask -----------------------------------------------------------------------------
    @property
    def generation(self) -> int:
        return self.follower.generation if self.follower else 0

    @property
    def version(self) -> str:
        return self.follower.version if self.follower else "5.5.5-10.11.0-MariaDB-lab-rds-proxy"

    def password_of(self, user: str) -> Optional[str]:
        return self.users.get(user)

    async def wait_writer(self, timeout: float) -> Optional[Instance]:
        """The writer, waiting for one at most `timeout` seconds (None: still none)."""
        follower = self.follower
        if follower is None:
            return None
        if follower.writer is None:
            try:
                await asyncio.wait_for(follower.ready.wait(), max(0.0, timeout))
            except asyncio.TimeoutError:
                return None
        return follower.writer

    def borrow_idle(self, key: Any) -> Tuple[Any, int]:
        """(an idle server session with this state, its generation) while a writer serves, else (None, -1):
        the per-statement path without ClientSession._connect's waiting (most statements take this)."""
        follower = self.follower
        if follower is None or not follower.ready.is_set():
            return None, -1
        server = self.pool.take(key, follower.generation)
        return (server, follower.generation) if server is not None else (None, -1)

    def count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    def forget(self, session: ClientSession) -> None:
        self.sessions.discard(session)


def proxy_endpoint(cluster: Any, host: str, name: str = L.RDS_PROXY_ENDPOINT) -> Any:
    """A proxy endpoint of `lab status` (`aurora-proxy`, `rds-proxy`): its cluster's credentials, the
    proxy's name, no topology."""
    import dataclasses

    return dataclasses.replace(cluster, name=name, host=host, host_pattern=None)


def proxy_address(layout: L.Layout, octet: int = L.RDS_PROXY_OCTET) -> Any:
    """Where the lab's RDS Proxy listens: a fixed address of its own (.50; .51 for RDS's), the lab's port."""
    return ("%s.%d" % (layout.base, octet), layout.port)


def listen_hosts(layout: L.Layout) -> Tuple[str, ...]:
    """The addresses a lab's RDS Proxies listen on, and their server sessions come from; () without them."""
    if not layout.rds_proxy:
        return ()
    return tuple(proxy_address(layout, octet)[0] for octet in (L.RDS_PROXY_OCTET, L.RDS_MYSQL_PROXY_OCTET))


def start_for_lab(lab: Any, password: str, log: Callable[[str], None]) -> RdsProxy:
    """Start the RDS Proxies of a lab daemon (daemon.Lab) on its loop, and name them in DNS:
    the one in front of Aurora (returned: `lab.rds_proxy`, what `lab patch` drives), and the one in front
    of RDS (`rds-proxy`, its `companion`: stopped with it, its counters under `rds` in its stats)."""
    layout = lab.layout
    started: List[RdsProxy] = []
    try:
        for cluster, name, octet, dns_name in (("aurora", "aurora-proxy", L.RDS_PROXY_OCTET, L.RDS_PROXY_NAME),
                                               ("rds", L.RDS_MYSQL_PROXY_ENDPOINT, L.RDS_MYSQL_PROXY_OCTET,
                                                L.RDS_MYSQL_PROXY_NAME)):
            instances = [Instance(s.name, layout.proxy_address(s)) for s in layout.cluster(cluster)]
            started.append(RdsProxy(proxy_address(layout, octet), instances, {L.CLIENT_USER: password}, lab.loop,
                                    log=log, name=name, tls=tls_for_lab(layout),
                                    account=account_factory(lab.ledger, name, cluster)).start())
            lab.zone.set(dns_name, "A", (started[-1].listen[0],), ttl=5)
    except BaseException:
        for proxy in started:
            proxy.stop()
        raise
    started[0].companion = started[1]
    return started[0]
