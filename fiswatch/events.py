"""The event vocabulary: every kind of event fiswatch writes, defined once.

One constant per kind (`STATE == "state"`) and one constructor per kind whose arguments are
the fields docs/events.md lists for it, in the order they are written (the record's key
order). Emitters build events only here; readers compare `ev.event` (or a record's
`"event"`) against the constants. `ts` is unix seconds (now when not given).

    >>> ev = connect("aurora/pymysql", "aurora", address="127.0.10.11", port=3306, took=0.004, ts=1.0)
    >>> ev.event == CONNECT, list(ev.as_dict())
    (True, ['ts', 'event', 'probe', 'endpoint', 'address', 'port', 'took'])

A field named like a Python keyword takes a trailing underscore (`failover(from_=...)`
writes `from`). Adding a kind: a constant, a constructor, its row in docs/events.md (a test
checks both ways), and its line in fiswatch/ui/text.py's table if the screen should say more
than `kind field=value ...`.
"""
import time
from typing import Any, Mapping, Optional, Sequence

from fiswatch.model import Event

RUN_START = "run_start"
STATE = "state"
ERROR = "error"
DNS = "dns"
CONNECT = "connect"
WRITE = "write"
WRITE_IN_DOUBT = "write_in_doubt"
READ = "read"
FAILOVER = "failover"
TICK = "tick"
LAB = "lab"
TOPOLOGY = "topology"
EXPERIMENT = "experiment"
INFO = "info"
WARNING = "warning"
VERIFY = "verify"
RUN_STOP = "run_stop"
SUMMARY = "summary"
WIRE_CLIENT = "wire_client"
LAB_DAEMON = "lab_daemon"

# `fiswatch fleet --json` (a stream about the whole room, written as dicts by fiswatch.aws.fleet_view)
FLEET = "fleet"
FLEET_STATE = "fleet_state"

KINDS = (RUN_START, STATE, ERROR, DNS, CONNECT, WRITE, WRITE_IN_DOUBT, READ, FAILOVER, TICK, LAB, TOPOLOGY,
         EXPERIMENT, INFO, WARNING, VERIFY, RUN_STOP, SUMMARY, WIRE_CLIENT, LAB_DAEMON)
FLEET_KINDS = (FLEET, FLEET_STATE, WARNING)

# Several a second per probe: on disk (the record) only, never kept in memory.
FREQUENT = frozenset({WRITE, READ, TICK})
# Never a line in the dashboard's event pane: the frequent ones, every connect, the last line,
# a program's wire totals (written when the run stops; its state changes are info/warning lines).
QUIET = FREQUENT | {CONNECT, SUMMARY, WIRE_CLIENT}
# Left out of `--json` (the record keeps them): one per round per probe.
NOT_STREAMED = frozenset({WRITE, READ})
# Written after the probes stopped: the report's run ends before them.
CLOSING = frozenset({VERIFY, SUMMARY})


def _event(kind: str, ts: Optional[float], /, **fields: Any) -> Event:
    """The one place events are made (`kind` and `ts` positional-only: `error` has a field named kind)."""
    return Event(kind, time.time() if ts is None else ts, tuple(fields.items()))


def run_start(probes: Sequence[Mapping[str, Any]], endpoints: Sequence[Mapping[str, Any]], *,
              stall_after: float, interval: float, ts: Optional[float] = None) -> Event:
    """First line of a run: each probe (`probe, endpoint, backend, library, version, notes, timeouts,
    available`) and endpoint (`name, url, host, port, database, table, source`; never a password)."""
    return _event(RUN_START, ts, probes=probes, endpoints=endpoints, stall_after=stall_after, interval=interval)


def state(probe: str, endpoint: str, backend: str, state: str, *, previous: Optional[str] = None,
          op: Optional[str] = None, error: Optional[str] = None, address: Optional[str] = None,
          ts: Optional[float] = None) -> Event:
    """A probe's state changed (the monitor decides; STALLED only there)."""
    return _event(STATE, ts, probe=probe, endpoint=endpoint, backend=backend, state=state, previous=previous,
                  op=op, error=error, address=address)


def error(probe: str, endpoint: str, *, code: Optional[int], kind: str, message: str, op: Optional[str] = None,
          address: Optional[str] = None, took: Optional[float] = None, ts: Optional[float] = None) -> Event:
    """A driver or DNS error in a probe, one per failed attempt."""
    return _event(ERROR, ts, probe=probe, endpoint=endpoint, code=code, kind=kind, message=message, op=op,
                  address=address, took=took)


def dns(endpoint: str, name: str, *, addresses: Sequence[str], previous: Sequence[str] = (),
        cname: Optional[str] = None, ttl: Optional[int] = None, error: Optional[str] = None,
        source: str = "dns", ts: Optional[float] = None) -> Event:
    """An endpoint's answer changed (`source`: dns | literal | hosts)."""
    return _event(DNS, ts, endpoint=endpoint, name=name, addresses=addresses, previous=previous, cname=cname,
                  ttl=ttl, error=error, source=source)


def connect(probe: str, endpoint: str, *, address: Optional[str], port: int, took: float,
            tls: Optional[str] = None, cipher: Optional[str] = None, ts: Optional[float] = None) -> Event:
    """A probe connected; `took` counts from the attempt's start, name lookup included.

    `tls` (TLSv1.3, TLSv1.2, plain, ?) and `cipher` are written only when given."""
    extra = {k: v for k, v in (("tls", tls), ("cipher", cipher)) if v is not None}
    return _event(CONNECT, ts, probe=probe, endpoint=endpoint, address=address, port=port, took=took, **extra)


def write(probe: str, endpoint: str, *, id: Optional[int], value: int, address: Optional[str],
          ts: Optional[float] = None) -> Event:
    """A COMMIT returned: the row is acknowledged."""
    return _event(WRITE, ts, probe=probe, endpoint=endpoint, id=id, value=value, address=address)


def write_in_doubt(probe: str, endpoint: str, *, id: Optional[int], value: int, address: Optional[str],
                   error: Optional[str], at_stop: bool = False, ts: Optional[float] = None) -> Event:
    """A COMMIT whose outcome is unknown; `at_stop` (written only when true): still in flight at stop."""
    extra = {"at_stop": True} if at_stop else {}
    return _event(WRITE_IN_DOUBT, ts, probe=probe, endpoint=endpoint, id=id, value=value, address=address,
                  error=error, **extra)


def read(probe: str, endpoint: str, *, id: Optional[int], rows: int, server: Optional[str],
         address: Optional[str], ts: Optional[float] = None) -> Event:
    """A read probe's SELECT returned: `id` the newest row it saw (None: the table was empty),
    `rows` how many, `server` who answered (@@server_id)."""
    return _event(READ, ts, probe=probe, endpoint=endpoint, id=id, rows=rows, server=server, address=address)


def failover(probe: str, endpoint: str, *, op: Optional[str], seconds: float, in_transaction: bool,
             write_in_doubt: bool, error: Optional[str], from_: Optional[str], to: Optional[str],
             tls: Optional[str] = None, cipher: Optional[str] = None, ts: Optional[float] = None) -> Event:
    """A client that fails over by itself moved its connection `from_` one writer `to` the next
    (`tls` and `cipher` of the new connection, written only when given)."""
    extra = {k: v for k, v in (("tls", tls), ("cipher", cipher)) if v is not None}
    return _event(FAILOVER, ts, probe=probe, endpoint=endpoint, op=op, seconds=seconds,
                  in_transaction=in_transaction, write_in_doubt=write_in_doubt, error=error,
                  **extra, **{"from": from_, "to": to})


def tick(probes: Mapping[str, Mapping[str, Any]], *, ts: Optional[float] = None) -> Event:
    """Once a second: per probe `state, ops, errors, latency_ms, stalled_for`."""
    return _event(TICK, ts, probes=probes)


def lab(target: str, step: str, detail: str, *, crash: bool, outage_start: Optional[float] = None,
        outage_end: Optional[float] = None, recovered: Optional[str] = None, stale_dns: Optional[float] = None,
        outage: Optional[str] = None, ts: Optional[float] = None) -> Event:
    """A lab failover step; `outage_start`, `outage_end`, `recovered`, `stale_dns` are written only when given.
    `outage` names an outage that is not a failover (crash, reboot: fiswatch/lab/crash.py)."""
    extra = {k: v for k, v in (("outage_start", outage_start), ("outage_end", outage_end),
                               ("recovered", recovered), ("stale_dns", stale_dns), ("outage", outage))
             if v is not None}
    return _event(LAB, ts, target=target, step=step, detail=detail, crash=crash, **extra)


def topology(endpoint: str, *, lines: Sequence[str], previous: Sequence[str], ts: Optional[float] = None) -> Event:
    """The AWS topology of an endpoint changed (short lines, as the column header shows them)."""
    return _event(TOPOLOGY, ts, endpoint=endpoint, lines=lines, previous=previous)


def experiment(experiment_id: str, target: str, state: str, reason: Optional[str] = None, *,
               ts: Optional[float] = None) -> Event:
    """A FIS experiment's state changed."""
    return _event(EXPERIMENT, ts, experiment_id=experiment_id, target=target, state=state, reason=reason)


def info(message: str, *, pause: Optional[bool] = None, ts: Optional[float] = None) -> Event:
    """A line for the log; `pause` (only from the pause key) says paused (true) or resumed."""
    extra = {} if pause is None else {"pause": pause}
    return _event(INFO, ts, message=message, **extra)


def warning(message: str, *, ts: Optional[float] = None) -> Event:
    """Something went wrong that the run survives: one line saying what and what to do."""
    return _event(WARNING, ts, message=message)


def verify(endpoint: str, *, ok: bool, acknowledged: int, lost: int, changed: int, in_doubt_committed: int,
           in_doubt_not_committed: int, lost_ids: Sequence[int], error: Optional[str], server: Optional[str],
           warnings: Sequence[str], ts: Optional[float] = None) -> Event:
    """The acknowledged writes to one endpoint checked against its current writer."""
    return _event(VERIFY, ts, endpoint=endpoint, ok=ok, acknowledged=acknowledged, lost=lost, changed=changed,
                  in_doubt_committed=in_doubt_committed, in_doubt_not_committed=in_doubt_not_committed,
                  lost_ids=lost_ids, error=error, server=server, warnings=warnings)


def run_stop(*, ts: Optional[float] = None) -> Event:
    """The probes are told to stop: open gaps and stalls end here in the report."""
    return _event(RUN_STOP, ts)


def summary(probes: Mapping[str, Mapping[str, Any]], *, ts: Optional[float] = None) -> Event:
    """Last line of a run: per probe ops, errors, longest stall, state now."""
    return _event(SUMMARY, ts, probes=probes)


def wire_client(probe: str, endpoint: str, *, backend: str, acked: int, segments: Sequence[Sequence[float]],
                gap_min: float, errors: Mapping[str, int], last_error: Optional[Sequence[Any]], refused: int,
                last_refused: Optional[float], dropped: int, last_dropped: Optional[float], faults: Sequence[float],
                unmeasured: Mapping[str, int], rolled_back: int = 0, rolled_back_writes: int = 0,
                ts: Optional[float] = None) -> Event:
    """A program measured from the wire by the lab's proxies, one per endpoint (fiswatch.lab.wire);
    `rolled_back`: its transactions holding writes that ended without an acknowledged COMMIT (with the
    `rolled_back_writes` they held: never acknowledged, never lost)."""
    return _event(WIRE_CLIENT, ts, probe=probe, endpoint=endpoint, backend=backend, acked=acked, segments=segments,
                  gap_min=gap_min, errors=errors, last_error=last_error, refused=refused, last_refused=last_refused,
                  dropped=dropped, last_dropped=last_dropped, faults=faults, unmeasured=unmeasured,
                  rolled_back=rolled_back, rolled_back_writes=rolled_back_writes)


def lab_daemon(state: str, *, lab_dir: str, message: str, orphans: int = 0, ts: Optional[float] = None) -> Event:
    """The lab's daemon (its DNS server and proxies) stopped answering (`state` gone) or answers again (back);
    `orphans`: its mariadbd left running."""
    return _event(LAB_DAEMON, ts, state=state, lab_dir=lab_dir, message=message, orphans=orphans)


CONSTRUCTORS = {RUN_START: run_start, STATE: state, ERROR: error, DNS: dns, CONNECT: connect, WRITE: write,
                WRITE_IN_DOUBT: write_in_doubt, READ: read, FAILOVER: failover, TICK: tick, LAB: lab, TOPOLOGY: topology,
                EXPERIMENT: experiment, INFO: info, WARNING: warning, VERIFY: verify, RUN_STOP: run_stop,
                SUMMARY: summary, WIRE_CLIENT: wire_client, LAB_DAEMON: lab_daemon}

