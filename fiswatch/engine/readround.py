"""The read workload: a probe that SELECTs the newest rows instead of writing (`--read NAME`).

Per round: SELECT the ROWS newest rows of the probe table, end the transaction (ROLLBACK: with
autocommit off, as the drivers default, a REPEATABLE READ snapshot would otherwise show the same
rows for ever), pause. On each new connection
it asks once who answers (`@@server_id`, `@@hostname`, `@@read_only`, and
`SELECT @@innodb_read_only`, Aurora's reader flag); a read probe that lands on a writer
says so once per server (a `warning`) and reads on: the reader endpoint of a cluster
without a live reader answers with the writer, as Aurora's does.

The probe (fiswatch.engine.probe) keeps everything else: connecting, retrying, the
snapshot it publishes before every call, so a read stalls, errs and reconnects on screen
exactly as a write does. How far a reader is behind is counted by `read_lag` (rows the
writer's probes committed that the reader has not returned yet), for the monitor, and, where
the shape has it, read from the reader itself after each SELECT, in seconds: a Multi-AZ DB cluster
reader's `SHOW REPLICA STATUS` (`Seconds_Behind_Source`, `replica_lag`), an Aurora instance's row in
the cluster topology (`REPLICA_LAG_IN_MILLISECONDS` of information_schema.replica_host_status,
`aurora_lag`).

    >>> from fiswatch.model import ProbeView, Snapshot, BackendInfo, State
    >>> def pv(ep, rows, reads=False, writer=None):
    ...     return ProbeView(Snapshot(ep + "/p", ep, "p", rows=rows, reads=reads), BackendInfo("p", "", ""),
    ...                      State.OK, 0.0, 0.0, (), 0.0)
    >>> views = [pv("aurora", ((40, 1),)), pv("aurora-ro", ((37, 1),), reads=True)]
    >>> [v.behind for v in read_lag(views, {"aurora-ro": "aurora"})]
    [None, 3]
"""
import time
from dataclasses import replace
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

from fiswatch import events as E
from fiswatch.lab.aurora import HOST_ID_QUERY, TOPOLOGY_QUERY
from fiswatch.model import Op, ProbeView, State

ROWS = 10
IDENTITY_SQL = "SELECT @@server_id, @@hostname, @@read_only"
REPLICA_STATUS_SQL = "SHOW REPLICA STATUS"  # a Multi-AZ DB cluster reader's lag (Seconds_Behind_Source)
READER_FLAG_SQL = "SELECT @@innodb_read_only"  # the exact text Aurora's readers answer 1 to (the lab's too)


class ReadRound:
    """One probe's read rounds; `run(conn)` is called by the probe in place of its write round."""

    def __init__(self, probe: Any) -> None:
        self.probe = probe
        self.sql = "SELECT id, value FROM `%s` ORDER BY id DESC LIMIT %d" % (probe.endpoint.table, ROWS)
        self.conn: Any = None  # the connection `server` was asked on
        self.server: Optional[str] = None
        self.said: Set[str] = set()  # servers already named as writers (said once each)
        self.has_lag = False  # the server answers SHOW REPLICA STATUS with a Seconds_Behind_Source row
        self.aurora_id: Optional[str] = None  # the Aurora instance answering (@@aurora_server_id), else None

    def run(self, conn: Any) -> None:
        probe = self.probe
        if conn is not self.conn:
            self.identify(conn)
        t0 = probe.enter(Op.SELECT)
        cur = conn.cursor()
        try:
            cur.execute(self.sql)
            rows = tuple([(int(i), int(v) if v is not None else 0) for i, v in cur.fetchall()])
            conn.rollback()  # end the read's transaction: the next SELECT sees rows replicated since
        finally:
            close_quietly(cur)
        end = time.monotonic()
        lag_s = replica_lag(conn)[1] if self.has_lag else aurora_lag(conn, self.aurora_id) if self.aurora_id else None
        snap = probe.snapshot
        probe.publish(state=State.OK, op=None, op_started=None, rows=rows, iterations=snap.iterations + 1,
                      latency=probe.connect_latency() + (("SELECT", end - t0),),
                      latency_total=snap.latency_total + (end - t0), last_ok=time.time(), server=self.server,
                      lag_s=lag_s)
        probe.emit(E.read(probe.id, probe.endpoint.name, id=rows[0][0] if rows else None, rows=len(rows),
                          server=self.server, address=snap.address))

    def identify(self, conn: Any) -> None:
        """Who answers on this connection (asked once per connection); a writer is said once per server."""
        probe = self.probe
        probe.enter(Op.SELECT)
        probe.backend.start_reading(conn)  # a client that routes reads to a reader is told it reads
        cur = conn.cursor()
        try:
            cur.execute(IDENTITY_SQL)
            server_id, hostname, read_only = cur.fetchone()
            try:
                cur.execute(READER_FLAG_SQL)
                innodb_read_only = cur.fetchone()[0]
            except Exception:  # noqa: BLE001 - a server without the variable: @@read_only alone tells
                innodb_read_only = 0
        finally:
            close_quietly(cur)
        self.conn = conn
        self.has_lag = replica_lag(conn)[0]
        self.aurora_id = None if self.has_lag else aurora_server_id(conn)
        self.server = server_text(server_id, hostname)
        if not _truthy(read_only) and not _truthy(innodb_read_only) and self.server not in self.said:
            self.said.add(self.server)
            ep = probe.endpoint
            probe.emit(E.warning(
                "read probe %s: %s (%s) answered from a writer (read_only 0, server %s), not a reader; reading on"
                % (probe.id, ep.name, ep.host, self.server)))


def replica_lag(conn: Any) -> Tuple[bool, Optional[int]]:
    """(does the server answer SHOW REPLICA STATUS with MySQL 8's Seconds_Behind_Source, its value).

    A Multi-AZ DB cluster reader does (the value None when it says NULL); MariaDB names the column
    Seconds_Behind_Master, a writer and Aurora have no row, the user may lack the privilege: (False, None).
    """
    cur = conn.cursor()
    try:
        cur.execute(REPLICA_STATUS_SQL)
        names = [d[0] for d in cur.description or ()]
        row = cur.fetchone()
        conn.rollback()
    except Exception:  # noqa: BLE001 - no privilege (Aurora's user), an old server: no lag from here
        return False, None
    finally:
        close_quietly(cur)
    if row is None or "Seconds_Behind_Source" not in names:
        return False, None
    value = row[names.index("Seconds_Behind_Source")]
    return True, None if value is None else int(value)


def aurora_server_id(conn: Any) -> Optional[str]:
    """The Aurora instance this connection is on (`@@aurora_server_id`), None where that is unknown (not Aurora)."""
    cur = conn.cursor()
    try:
        cur.execute(HOST_ID_QUERY)
        row = cur.fetchone()
        conn.rollback()
    except Exception:  # noqa: BLE001 - MariaDB, MySQL, RDS: no such variable
        return None
    finally:
        close_quietly(cur)
    value = row[0] if row else None
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("utf-8", "replace")
    return str(value) if value else None


def aurora_lag(conn: Any, instance_id: str) -> Optional[float]:
    """This Aurora reader's REPLICA_LAG_IN_MILLISECONDS in the cluster's topology
    (information_schema.replica_host_status, the row SERVER_ID = `instance_id`), in seconds; None without a row.

    The exact query the AWS wrapper sends (the lab's instance proxies answer it from their topology table)."""
    cur = conn.cursor()
    try:
        cur.execute(TOPOLOGY_QUERY)
        rows = cur.fetchall()
        conn.rollback()
    except Exception:  # noqa: BLE001 - no topology on this server: no lag from here
        return None
    finally:
        close_quietly(cur)
    for row in rows:
        sid = row[0].decode("utf-8", "replace") if isinstance(row[0], (bytes, bytearray)) else str(row[0])
        if sid == instance_id and row[3] is not None:
            return float(row[3]) / 1000.0
    return None


def server_text(server_id: Any, hostname: Any) -> str:
    """`5`, or `5 db-host` when the host name is not just this machine's (on AWS: the instance).

    >>> import socket
    >>> server_text(5, socket.gethostname()), server_text(1, "ip-10-0-1-5.example")
    ('5', '1 ip-10-0-1-5.example')
    """
    import socket

    text = str(server_id)
    host = str(hostname or "")
    if host and host != socket.gethostname():
        text += " " + host
    return text


def _truthy(value: Any) -> bool:
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("ascii", "replace")
    return str(value).strip().upper() in ("1", "ON", "TRUE")


def read_lag(views: Sequence[ProbeView], writers: Dict[str, str]) -> List[ProbeView]:
    """Each read probe's view with `behind`: the writer endpoint's newest row id (over its write
    probes) minus the newest this read probe returned; None when either is unknown.
    `writers`: read endpoint -> the endpoint its writes come through."""
    newest: Dict[str, int] = {}
    for v in views:
        snap = v.snapshot
        if not snap.reads and snap.rows:
            newest[snap.endpoint] = max(newest.get(snap.endpoint, 0), snap.rows[0][0])
    out = []
    for v in views:
        snap = v.snapshot
        top = newest.get(writers.get(snap.endpoint, ""))
        if snap.reads and top is not None and snap.rows:
            v = replace(v, behind=max(0, top - snap.rows[0][0]))
        out.append(v)
    return out


def close_quietly(obj: Any) -> None:
    """Close a cursor or connection, whatever it raises (the probes' write round uses it too)."""
    if obj is None:
        return
    try:
        obj.close()
    except Exception:  # noqa: BLE001
        pass
