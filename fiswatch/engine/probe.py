"""One probe: one daemon thread writing to one endpoint through one backend.

The workshop's workload, per round: INSERT a random value 0..32767, COMMIT, SELECT the 10
newest rows, pause. Before every driver call the probe publishes a Snapshot naming the
call and when it started; the monitor (another thread) turns "in flight for too long"
into STALLED. A probe stuck forever inside a driver costs one parked daemon thread and
nothing else: no lock is shared with the screen or with other probes.
"""
import random
import threading
import time
from typing import Any, Callable, Dict, Optional, Set, Tuple

from fiswatch import events as E
from fiswatch.backends.base import Backend, BackendOptionError
from fiswatch.config.checks import check_table
from fiswatch.model import DEMOTED_WRITER, BackendSpec, Endpoint, ErrorInfo, Event, Op, Resolution, Snapshot, State
from fiswatch.engine.readround import ReadRound, close_quietly
from fiswatch.engine.resolve import Resolver
from fiswatch.engine.retry import RetryPolicy

ROWS = 10
READ_ONLY_CODES = (1290, 1836)  # MySQL/MariaDB --read-only; MySQL's "Running in read-only mode"

Emit = Callable[[Event], None]


def probe_id(endpoint: Endpoint, spec: BackendSpec) -> str:
    return "%s/%s" % (endpoint.name, spec.label)


class Probe:
    """Runs the workload in its own daemon thread; read `snapshot` from any thread."""

    def __init__(self, endpoint: Endpoint, spec: BackendSpec, backend: Backend, emit: Emit,
                 interval: float = 0.05, nameserver=None, connect_by_name: bool = False,
                 seed: Optional[int] = None, retry: Optional[RetryPolicy] = None) -> None:
        check_table(endpoint.table)  # ConfigError (a ValueError): the same check as --table and create-db
        self.endpoint = endpoint
        self.spec = spec
        self.backend = backend
        self.emit = emit
        self.interval = interval
        self.connect_by_name = connect_by_name
        self.id = probe_id(endpoint, spec)
        self.resolver = Resolver(nameserver)
        self.snapshot = Snapshot(probe=self.id, endpoint=endpoint.name, backend=spec.label, reads=endpoint.reads)
        self._stop = threading.Event()
        self._running = threading.Event()  # cleared while paused
        self._running.set()
        self.retry = retry or RetryPolicy()
        # set by the endpoint's DNS watcher when the answer changes (and by stop): ends a
        # retry wait at once; cleared when an attempt starts (see fiswatch.engine.retry)
        self.wake = threading.Event()
        self._attempt_started: Optional[float] = None
        self._failing_since: Optional[float] = None  # first failure since the last completed round
        self._connect_latency: Tuple[Tuple[str, float], ...] = ()
        self._wrote_at: Set[Optional[str]] = set()  # addresses a write of this probe committed at: writers then
        self._rng = random.Random(seed)
        self._thread = threading.Thread(target=self._run, name="probe " + self.id, daemon=True)
        table = "`%s`" % endpoint.table
        self._insert_sql = "INSERT INTO %s (value) VALUES (%%s)" % table
        self._select_sql = "SELECT id, value FROM %s ORDER BY id DESC LIMIT %d" % (table, ROWS)
        self.reads = ReadRound(self) if endpoint.reads else None  # `--read NAME`: SELECTs instead of writes

    # -- control, from any thread -------------------------------------------------------------------
    def start(self) -> "Probe":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._running.set()
        self.wake.set()

    def pause(self, paused: bool) -> None:
        if paused:
            self._running.clear()
        else:
            self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: Optional[float] = None) -> None:
        self._thread.join(timeout)

    # -- publishing ----------------------------------------------------------------------------------
    def _publish(self, **changes: Any) -> None:
        """Swap in a new Snapshot: the old one with `changes`. Readers see one or the other."""
        old = self.snapshot
        # Four of these per round: build the frozen dataclass without running its
        # __init__ (fields are copied from a valid Snapshot), which costs a third less.
        snap = object.__new__(Snapshot)
        fields = snap.__dict__
        fields.update(old.__dict__)
        fields.update(changes)
        fields["seq"] = old.seq + 1
        self.snapshot = snap

    def _begin(self, op: Op, **changes: Any) -> float:
        started = time.monotonic()
        self._publish(op=op, op_started=started, **changes)
        return started

    def _enter(self, op: Op, pending: Optional[Tuple[Optional[int], int]] = None) -> float:
        """`_begin(op, pending=...)` for the three calls of every round: the same Snapshot
        swap, without the keyword dicts (fiswatch's own cost per round is what figure 1
        measures). `pending`: the (id, value) whose COMMIT is in flight, else None."""
        old = self.snapshot
        snap = object.__new__(Snapshot)
        fields = snap.__dict__
        fields.update(old.__dict__)
        fields["op"] = op
        fields["pending"] = pending
        fields["op_started"] = started = time.monotonic()
        fields["seq"] = old.seq + 1
        self.snapshot = snap
        return started

    # -- the workload --------------------------------------------------------------------------------
    def _run(self) -> None:
        conn = None
        ever_connected = False
        while not self._stop.is_set():
            if not self._running.is_set():
                self._running.wait()
                continue
            if conn is None:
                conn = self._connect(ever_connected)
                if conn is None:
                    if self.snapshot.state is State.STOPPED:
                        return
                    self._wait_retry()
                    continue
                ever_connected = True
            try:
                self.run_round(conn)
            except Exception as exc:  # noqa: BLE001 - any driver failure: drop the connection, reconnect
                if self._client_failed_over(conn, exc):
                    continue  # the client is on the new writer already: keep its connection
                self._fail(exc, self.snapshot.op)
                close_quietly(conn)
                conn = None
                self._wait_retry()
                continue
            self._failing_since = None
            if self.interval > 0:
                self._stop.wait(self.interval)
        close_quietly(conn)

    def _wait_retry(self) -> None:
        """Wait until the policy allows the next attempt; a DNS change ends the wait early."""
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
        at = self.retry.next_attempt(self._attempt_started, now, self.wake.is_set(), self._failing_since)
        self._publish(retry_at=at)
        if at > now and not self.wake.is_set() and self.wake.wait(at - now) and not self._stop.is_set():
            at = self.retry.next_attempt(self._attempt_started, now, True, self._failing_since)
            self._publish(retry_at=at)
        remaining = at - time.monotonic()
        if remaining > 0:
            self._stop.wait(remaining)

    def _connect(self, reconnect: bool) -> Any:
        ep = self.endpoint
        state = State.RECONNECTING if reconnect else State.CONNECTING
        self.wake.clear()  # a DNS change from now on is news to the next wait
        self._attempt_started = self._begin(Op.RESOLVE, state=state, retry_at=None,
                                            reconnects=self.snapshot.reconnects + (1 if reconnect else 0))
        resolution = self.resolver.resolve(ep.host)
        address = resolution.address
        if address is None:
            self._fail_info(ErrorInfo(None, "dns", "%s: %s" % (ep.host, resolution.error or "no address")),
                            Op.RESOLVE, resolution=resolution)
            return None
        previous = self.snapshot.previous_address
        if self.snapshot.address and self.snapshot.address != address:
            previous = self.snapshot.address
        started = self._begin(Op.CONNECT, address=address, previous_address=previous, resolution=resolution)
        password = ep.password.reveal() if ep.password is not None else ""
        target = ep.host if self.connect_by_name else address
        try:
            conn = self.backend.connect(target, ep.port, ep.user, password, ep.database,
                                        server_hostname=ep.host)
        except BackendOptionError as exc:  # a configuration problem: retrying cannot help
            self._fail_info(ErrorInfo(None, "config", str(exc)), Op.CONNECT)
            self._publish(state=State.STOPPED)
            return None
        except Exception as exc:  # noqa: BLE001
            self._fail(exc, Op.CONNECT)
            return None
        self._connect_latency = (("connect", time.monotonic() - started),)
        on = self._address_of(conn)  # a client that fails over may have connected elsewhere already
        if on and on != address:
            previous, address = address, on
        version, cipher = self._tls_of(conn)
        self._publish(op=None, op_started=None, latency=self._connect_latency,
                      address=address, previous_address=previous, tls=version)
        self.emit(E.connect(self.id, ep.name, address=address, port=ep.port,
                            took=round(time.monotonic() - self._attempt_started, 4), tls=version, cipher=cipher))
        return conn

    def _tls_of(self, conn: Any) -> Tuple[str, Optional[str]]:
        """(TLS version or 'plain', cipher) of a connection; ('?', None) when the driver does not tell."""
        try:
            facts = self.backend.tls_facts(conn)
        except Exception:  # noqa: BLE001
            facts = None
        if not facts:
            return "?", None
        return facts[0], facts[1] or None

    # for the read round (fiswatch.engine.readround): the same snapshot swaps as the write round's
    enter = _enter
    publish = _publish

    def connect_latency(self) -> Tuple[Tuple[str, float], ...]:
        return self._connect_latency

    def run_round(self, conn: Any) -> None:
        """One INSERT / COMMIT / SELECT round on `conn`, published as it goes (the benchmark times it);
        a read probe's round instead (fiswatch.engine.readround)."""
        if self.reads is not None:
            return self.reads.run(conn)
        value = self._rng.randint(0, 32767)
        t0 = self._enter(Op.INSERT)
        cur = conn.cursor()
        try:
            cur.execute(self._insert_sql, (value,))
            row_id = cur.lastrowid
            t1 = self._enter(Op.COMMIT, (row_id, value))
            try:
                conn.commit()
            except Exception as exc:
                self.emit(E.write_in_doubt(self.id, self.endpoint.name, id=row_id,
                                           value=value, address=self.snapshot.address,
                                           error=self.backend.classify(exc).short()))
                raise
            t2 = self._enter(Op.SELECT)
            if self.snapshot.address not in self._wrote_at:
                self._wrote_at.add(self.snapshot.address)
            self.emit(E.write(self.id, self.endpoint.name, id=row_id, value=value, address=self.snapshot.address))
            cur.execute(self._select_sql)
            rows = tuple([(int(i), int(v) if v is not None else 0) for i, v in cur.fetchall()])
        finally:
            close_quietly(cur)
        end = time.monotonic()
        snap = self.snapshot
        # the round's three latencies in one tuple, after the connect's (one build per round)
        self._publish(
            state=State.OK, op=None, op_started=None, rows=rows, iterations=snap.iterations + 1,
            latency=self._connect_latency + (("INSERT", t1 - t0), ("COMMIT", t2 - t1), ("SELECT", end - t2)),
            latency_total=snap.latency_total + (end - t0), last_ok=time.time(),
        )

    def in_doubt_at_stop(self) -> Optional[Event]:
        """A `write_in_doubt` for the write whose COMMIT is still in flight (call once the probes stopped).

        Its id and value are known, so `verify` can tell whether it committed; without this
        a COMMIT that never returns would leave no trace of its write in the record.
        """
        snap = self.snapshot
        if snap.op is not Op.COMMIT or snap.pending is None:
            return None
        row_id, value = snap.pending
        return E.write_in_doubt(self.id, self.endpoint.name, id=row_id, value=value,
                                address=snap.address, error="COMMIT never returned before the probes stopped",
                                at_stop=True)

    def _client_failed_over(self, conn: Any, exc: BaseException) -> bool:
        """A client that fails over by itself (aws-wrapper) raised its "done, on the new writer now".

        Not a reconnect: the connection stays. The failover is counted, shown and recorded
        with the address it left and the one it is on now (before DNS changes, if it was
        faster); a COMMIT it interrupted was already recorded as in doubt by run_round.
        """
        try:
            how = self.backend.handled_failover(exc)
        except Exception:  # noqa: BLE001
            how = None
        if how is None:
            return False
        snap = self.snapshot
        took = snap.in_flight_for(time.monotonic())
        before = snap.address
        now = self._address_of(conn) or before
        version, cipher = self._tls_of(conn)
        self._publish(op=None, op_started=None, pending=None, address=now, failovers=snap.failovers + 1,
                      previous_address=before if before and before != now else snap.previous_address, tls=version)
        self.emit(E.failover(self.id, self.endpoint.name,
                             op=str(snap.op) if snap.op else None, seconds=round(took, 3),
                             in_transaction=how == "in-doubt", write_in_doubt=snap.op is Op.COMMIT,
                             error=self.backend.classify(exc).short(), tls=version, cipher=cipher,
                             from_=before, to=now))
        return True

    def _address_of(self, conn: Any) -> Optional[str]:
        """The address a client that moves its connection itself is on now (None: not such a client)."""
        try:
            host = self.backend.current_address(conn)
        except Exception:  # noqa: BLE001
            return None
        if not host:
            return None
        return self.resolver.resolve(host).address or host

    def _fail(self, exc: BaseException, op: Optional[Op]) -> None:
        try:
            info = self.backend.classify(exc)
        except Exception:  # noqa: BLE001 - a classifier bug must not kill the probe
            info = ErrorInfo(None, type(exc).__name__, str(exc))
        if info.code in READ_ONLY_CODES and self.snapshot.address in self._wrote_at:
            # refused as read-only where this probe's writes once committed: the writer it wrote to
            # was demoted and the name still leads here (a stale DNS answer or cache)
            info = ErrorInfo(info.code, DEMOTED_WRITER, info.message)
        self._fail_info(info, op)

    def _fail_info(self, info: ErrorInfo, op: Optional[Op], resolution: Optional[Resolution] = None) -> None:
        snap = self.snapshot
        # where the failed call went and how long it took; a failed connect counts from the
        # attempt's start (its name lookup included)
        started = self._attempt_started if op in (Op.RESOLVE, Op.CONNECT) else snap.op_started
        took = round(time.monotonic() - started, 4) if started is not None else None
        address = None if op is Op.RESOLVE else snap.address
        changes: Dict[str, Any] = dict(state=State.ERROR, op=None, op_started=None, last_error=info, errors=snap.errors + 1)
        if resolution is not None:
            changes["resolution"] = resolution
        self._publish(**changes)
        self.emit(E.error(self.id, self.endpoint.name, code=info.code, kind=info.kind,
                          message=info.message, op=str(op) if op else None, address=address, took=took))
