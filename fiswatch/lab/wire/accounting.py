"""Per-client accounting of what every lab proxy sees on the wire: a session behaviour and the lab's ledger.

`Ledger` belongs to the lab daemon (one for all its proxies); `Ledger.session_factory(instance)`
is what a FaultProxy is given. Each connection gets an `Accounting` behaviour (session.py calls
it); it files what it reads under the connection's client, a process:

  Which process owns a connection: the client's own `_pid` connection attribute when it sends
  one (libmysqlclient, MariaDB Connector/C, PyMySQL and mysql-connector all do) and /proc/<pid>
  exists; otherwise the owner of the client socket's inode (/proc/net/tcp, then /proc/*/fd),
  looked up off the proxy's loop; otherwise the client's address ("unknown process"). A process
  is recorded with its command line and its ancestors (/proc/<pid>/stat), so `lab exec` can group
  every process its program started (children that fork and connect included).

What a client is credited with (all times are when the answer passed the proxy, time.time()):
  acknowledged write   an OK to a write (INSERT/REPLACE/UPDATE/DELETE/LOAD) outside a transaction
                       (the OK's status has no SERVER_STATUS_IN_TRANS), or an OK that ends a
                       transaction holding writes (COMMIT, an implicit commit); ROLLBACK, a deadlock
                       (1213) or the connection ending discard the transaction's writes.
  rolled back          a transaction holding writes that ended without an acknowledged COMMIT (ROLLBACK,
                       1213, the connection ending or dropped mid-transaction): counted with the writes it
                       held (`rolled_back`, `rolled_back_writes`); those were never acknowledged, never lost.
  dropped connection   a connection that ended without COM_QUIT (reset, fenced and timed out,
                       the program killed): what the client saw as 2013 / 2006.
  refused write        ERR 1290 / 1836 (read-only server): a connection left on a demoted writer.
  errors               ERR codes, counted; the client's last error with its time.
  by endpoint          writes and errors are kept per endpoint (the proxy's cluster: aurora, rds):
                       a failover's verdict reads only its own endpoint's writes.
  acknowledged inserts INSERT/REPLACE ids: ("endpoint/db.table", first last_insert_id, rows) ranges, merged when
                       consecutive, at most MAX_RANGES per client (16 bytes each as two ints in the
                       snapshot, about 100 bytes in memory: <= 100 MB per million non-consecutive
                       inserts; a single-connection inserter makes one range). Beyond: counted as
                       unverifiable.
  unverifiable         acknowledged UPDATE/DELETE (no id to look up), INSERTs without an
                       auto-increment id (last_insert_id 0), or beyond the bound.
State per open connection is bounded (the transaction's pending inserts at most MAX_PENDING,
prepared statements at most MAX_STATEMENTS); nothing is kept per statement.
"""
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Optional, Tuple

from fiswatch.lab.wire import framing as F
from fiswatch.lab.wire import payload as P
from fiswatch.lab.wire.classify import BEGIN, COMMIT, ROLLBACK, USE, WRITE, Statement, classify
from fiswatch.lab.wire.owner import pid_of_connection, process_facts
from fiswatch.lab.wire.session import Session

GAP_MIN = 0.2  # acknowledged writes closer than this are one stretch of writing
MAX_SEGMENTS = 20000  # writing stretches kept per client (a 10-minute run with 0.2 s flaps: 3000)
MAX_RANGES = 1000000
MAX_PENDING = 10000
MAX_STATEMENTS = 512
MAX_CLIENTS = 10000
MAX_FAULTS = 4096
REFUSED = (1290, 1836)
ROLLED_BACK = (1213,)


class Track:
    """One client's writes and errors on one endpoint (cluster): what its verdict is computed from."""

    def __init__(self) -> None:
        self.acked = 0
        self.segments: List[List[float]] = []
        self.segments_dropped = 0
        self.errors: Dict[int, int] = {}
        self.last_error: Optional[Tuple[int, float]] = None
        self.refused = 0
        self.last_refused: Optional[float] = None
        self.dropped = 0  # connections that ended without COM_QUIT (the client saw 2013/2006, or gave up)
        self.last_dropped: Optional[float] = None
        self.faults: List[float] = []  # times of errors and dropped connections, the last MAX_FAULTS
        self.rolled_back = 0  # transactions holding writes that ended without an acknowledged COMMIT
        self.rolled_back_writes = 0  # the writes they held: never acknowledged

    def fault(self, now: float) -> None:
        self.faults.append(round(now, 3))
        if len(self.faults) > MAX_FAULTS:
            del self.faults[:len(self.faults) - MAX_FAULTS]

    def ack(self, now: float, count: int = 1) -> None:
        self.acked += count
        if self.segments and now - self.segments[-1][1] < GAP_MIN:
            self.segments[-1][1] = now
        elif len(self.segments) < MAX_SEGMENTS:
            self.segments.append([now, now])
        else:
            self.segments[-1][1] = now
            self.segments_dropped += 1

    def error(self, code: int, now: float) -> None:
        self.fault(now)
        self.errors[code] = self.errors.get(code, 0) + 1
        self.last_error = (code, now)
        if code in REFUSED:
            self.refused += 1
            self.last_refused = now

    def snapshot(self) -> Dict[str, Any]:
        return {"acked": self.acked, "segments": [list(s) for s in self.segments],
                "segments_dropped": self.segments_dropped, "errors": {str(k): v for k, v in self.errors.items()},
                "last_error": list(self.last_error) if self.last_error else None,
                "refused": self.refused, "last_refused": self.last_refused,
                "dropped": self.dropped, "last_dropped": self.last_dropped, "faults": list(self.faults),
                "rolled_back": self.rolled_back, "rolled_back_writes": self.rolled_back_writes}


class Client:
    """What one process (or one unknown peer) did through the lab's proxies. Loop thread only."""

    def __init__(self, key: str, pid: Optional[int]) -> None:
        self.key = key
        self.pid = pid
        self.cmdline = ""
        self.ancestors: List[int] = []
        self.name = ""
        self.user = ""
        self.connects = 0
        self.open = 0
        self.instances: Dict[str, int] = {}
        self.last_instance = ""
        self.address = ""
        self.tracks: Dict[str, Track] = {}  # by endpoint (cluster)
        self.commands = 0
        self.unmeasured: Dict[str, int] = {}
        self.inserts: Dict[str, List[List[int]]] = {}
        self.ranges = 0
        self.unverifiable: Dict[str, int] = {}

    def track(self, endpoint: str) -> Track:
        track = self.tracks.get(endpoint)
        if track is None:
            track = self.tracks[endpoint] = Track()
        return track

    def insert(self, table: str, first: int, rows: int) -> None:
        ranges = self.inserts.setdefault(table, [])
        if ranges and ranges[-1][0] + ranges[-1][1] == first:
            ranges[-1][1] += rows
        elif self.ranges < MAX_RANGES:
            ranges.append([first, rows])
            self.ranges += 1
        else:
            self.not_verifiable("beyond %d insert ranges" % MAX_RANGES, rows)

    def not_verifiable(self, why: str, count: int = 1) -> None:
        self.unverifiable[why] = self.unverifiable.get(why, 0) + count

    def snapshot(self) -> Dict[str, Any]:
        return {"key": self.key, "pid": self.pid, "cmdline": self.cmdline, "ancestors": list(self.ancestors),
                "name": self.name, "user": self.user, "connects": self.connects, "open": self.open,
                "instances": dict(self.instances), "last_instance": self.last_instance, "address": self.address,
                "endpoints": {e: t.snapshot() for e, t in self.tracks.items()},
                "acked": sum(t.acked for t in self.tracks.values()), "commands": self.commands,
                "unmeasured": dict(self.unmeasured),
                "inserts": {t: [list(r) for r in rs] for t, rs in self.inserts.items()},
                "unverifiable": dict(self.unverifiable)}


class Accounting:
    """The session behaviour of one connection: reads its commands and answers into a Client."""

    def __init__(self, ledger: "Ledger", instance: str, peer: Tuple[str, int], endpoint: str = "") -> None:
        self.ledger = ledger
        self.instance = instance
        self.endpoint = endpoint or instance
        self.peer = peer
        self.client = ledger.provisional(peer)
        self.client.connects += 1
        self.client.open += 1
        self.schema = ""
        self.statement: Optional[Statement] = None  # of the command in flight
        self.prepared: Dict[int, Statement] = {}
        self.pending_writes = 0
        self.pending_inserts: List[Tuple[str, int, int]] = []
        self.preparing: Optional[Statement] = None
        self.resolved_pid: Optional[int] = None  # set by the ledger's resolver thread
        self.quit = False
        self._reached = False

    # --- session hooks ----------------------------------------------------------------------
    def on_handshake(self, hs: P.HandshakeResponse) -> None:
        self.schema = hs.database
        pid = None
        raw = hs.attributes.get("_pid", "")
        if raw.isdigit() and os.path.isdir("/proc/%s" % raw):
            pid = int(raw)
        self.client = self.ledger.identify(self, pid)
        c = self.client
        c.name = hs.attributes.get("program_name") or hs.attributes.get("_client_name") or c.name
        c.user = hs.user

    def on_authenticated(self) -> None:
        c = self.client
        c.instances[self.instance] = c.instances.get(self.instance, 0) + 1
        c.last_instance = self.instance
        c.address = "%s:%d" % self.peer
        self._reached = True

    def on_command(self, command: int, packet: F.Packet) -> None:
        if self.resolved_pid is not None:
            old = self.client
            self.client = self.ledger.adopt(old, self.resolved_pid)
            self.resolved_pid = None
            if self.client is not old and self._reached:  # the instance it reached goes with the connection
                c = self.client
                c.instances[self.instance] = c.instances.get(self.instance, 0) + 1
                c.last_instance = self.instance
        self.client.commands += 1
        self.statement = None
        if command == F.COM_QUIT:
            self.quit = True
        if command == F.COM_QUERY:
            self.statement = classify(packet.head[1:])
        elif command == F.COM_STMT_PREPARE:
            self.preparing = classify(packet.head[1:])
        elif command == F.COM_STMT_EXECUTE:
            self.statement = self.prepared.get(P.statement_id(packet.head))
        elif command == F.COM_STMT_CLOSE:
            self.prepared.pop(P.statement_id(packet.head), None)
        elif command == F.COM_INIT_DB:
            self.statement = Statement(USE, schema=packet.head[1:].decode("utf-8", "replace"))

    def on_answer(self, command: Optional[int], packet: F.Packet, answer: Optional[P.Answer]) -> None:
        now = time.time()
        c = self.client
        if command == F.COM_STMT_PREPARE:
            if answer is None and self.preparing is not None and len(self.prepared) < MAX_STATEMENTS:
                self.prepared[P.parse_prepare_ok(packet.head)[0]] = self.preparing
            self.preparing = None
            return
        if answer is None:
            return
        if answer.kind == "err":
            c.track(self.endpoint).error(answer.error_code, now)
            if answer.error_code in ROLLED_BACK:
                self._discard(rolled_back=True)
            return
        if answer.kind != "ok":
            return
        st = self.statement
        kind = st.kind if st is not None else None
        if kind == USE and st is not None and st.schema:
            self.schema = st.schema
        if kind == ROLLBACK:
            self._discard(rolled_back=True)
            return
        in_trans = bool(answer.status & F.SERVER_STATUS_IN_TRANS)
        if kind == WRITE and st is not None:
            self.pending_writes += 1
            self._note_insert(st, answer)
        ends = kind in (COMMIT, BEGIN) or not in_trans
        if ends and self.pending_writes:
            c.track(self.endpoint).ack(now, self.pending_writes)
            for table, first, rows in self.pending_inserts:
                c.insert(self.endpoint + "/" + table, first, rows)
            self.pending_writes, self.pending_inserts = 0, []

    def on_unmeasured(self, reason: str) -> None:
        c = self.client
        c.unmeasured[reason] = c.unmeasured.get(reason, 0) + 1
        if not self._reached:
            c.instances[self.instance] = c.instances.get(self.instance, 0) + 1
            c.last_instance = self.instance
            c.address = "%s:%d" % self.peer

    def on_close(self) -> None:
        if self._reached and not self.quit:
            track = self.client.track(self.endpoint)
            track.dropped += 1
            track.last_dropped = time.time()
            track.fault(track.last_dropped)
        self._discard(rolled_back=True)  # the server rolls back a transaction its connection ended in
        self.client.open -= 1
        self.prepared.clear()

    # --- internals ----------------------------------------------------------------------------
    def _note_insert(self, st: Statement, answer: P.Answer) -> None:
        if st.insert_table is None:
            self.client.not_verifiable("UPDATE/DELETE/LOAD (no id to look up)", max(1, answer.affected_rows))
            return
        if answer.last_insert_id == 0:
            self.client.not_verifiable("INSERT without an auto-increment id", max(1, answer.affected_rows))
            return
        table = st.insert_table if "." in st.insert_table or not self.schema else self.schema + "." + st.insert_table
        if len(self.pending_inserts) < MAX_PENDING:
            self.pending_inserts.append((table, answer.last_insert_id, max(1, answer.affected_rows)))
        else:
            self.client.not_verifiable("beyond %d inserts in one transaction" % MAX_PENDING)

    def _discard(self, rolled_back: bool = False) -> None:
        if rolled_back and self.pending_writes:
            track = self.client.track(self.endpoint)
            track.rolled_back += 1
            track.rolled_back_writes += self.pending_writes
        self.pending_writes, self.pending_inserts = 0, []


class Ledger:
    """Every client of every lab proxy. Mutated on the proxies' loop; `snapshot` from any thread."""

    def __init__(self, resolve_owner: bool = True) -> None:
        self._clients: Dict[str, Client] = {}
        self._lock = threading.Lock()
        self._resolver = ThreadPoolExecutor(1, thread_name_prefix="wire-owner") if resolve_owner else None
        self.started = time.time()

    def session_factory(self, instance: str, rewriter: Optional[Callable[[], Any]] = None,
                        endpoint: str = "") -> Callable[..., Session]:
        """What a FaultProxy of `instance` (of the cluster `endpoint`) is given as `session`."""
        def make(peer: Tuple[str, int]) -> Session:
            return Session([Accounting(self, instance, peer, endpoint)], rewriter=rewriter() if rewriter else None)
        return make

    def provisional(self, peer: Tuple[str, int]) -> Client:
        return self._client("peer %s" % peer[0], None)

    def identify(self, acc: Accounting, pid: Optional[int]) -> Client:
        """The connection's client by pid (from `_pid`), else looked up by its socket off the loop."""
        old = acc.client
        if pid is not None:
            return self.adopt(old, pid)
        if self._resolver is not None:
            self._resolver.submit(self._resolve, acc)
        return old

    def adopt(self, old: Client, pid: int) -> Client:
        """The connection counted under `old` belongs to process pid (loop thread)."""
        new = self._by_pid(pid)
        if new is not old:
            old.connects -= 1
            old.open -= 1
            new.connects += 1
            new.open += 1
        return new

    def snapshot(self) -> Dict[str, Any]:
        """Everything, as JSON-ready data; call it on the proxies' loop (ProxyLoop.call)."""
        with self._lock:
            clients = [c.snapshot() for c in self._clients.values()]
        return {"started": self.started, "now": time.time(), "gap_min": GAP_MIN, "clients": clients}

    def close(self) -> None:
        if self._resolver is not None:
            self._resolver.shutdown(wait=False)

    # --- internals ----------------------------------------------------------------------------
    def _client(self, key: str, pid: Optional[int]) -> Client:
        client = self._clients.get(key)
        if client is None:
            with self._lock:
                if len(self._clients) >= MAX_CLIENTS:
                    key = "other clients (over %d)" % MAX_CLIENTS
                client = self._clients.get(key)
                if client is None:
                    client = self._clients[key] = Client(key, pid)
                    if pid is not None:
                        client.cmdline, client.ancestors = process_facts(pid)
        return client

    def _by_pid(self, pid: int) -> Client:
        return self._client("pid %d" % pid, pid)

    def _resolve(self, acc: Accounting) -> None:
        try:
            acc.resolved_pid = pid_of_connection(acc.peer)
        except (OSError, ValueError):
            pass
