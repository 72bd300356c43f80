"""Views built by hand for the UI tests, and a tiny app that runs the real dashboard on them.

`python tests/dashboard_app.py` paints `run_dashboard` with a changing View in the
terminal it is given (the pty test launches it). One probe thread is parked for good in
recv() on a loopback socket that never answers, like a driver with no read timeout, to
show that the dashboard does not depend on it. After the dashboard returns, the app
prints a summary line to the restored terminal.
"""
import dataclasses
import os
import sys
import time
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
if os.path.dirname(HERE) not in sys.path:
    sys.path.insert(0, os.path.dirname(HERE))

from fiswatch import events as E  # noqa: E402
from fiswatch.model import (BackendInfo, EndpointView, ErrorInfo, Event, Op, ProbeView,  # noqa: E402
                            Resolution, Snapshot, State, View)

CONNECTOR = BackendInfo("mysql-connector", "mysql-connector-python", "9.4.0",
                        (("connect", 1.0), ("read", None), ("write", None)), notes="C extension")
PYMYSQL = BackendInfo("pymysql", "PyMySQL", "1.1.1", (("connect", 1.0), ("read", 1.0), ("write", 1.0)),
                      notes="pure Python")
WRAPPER = BackendInfo("aws-wrapper", "aws-advanced-python-wrapper", "3.1.0",
                      (("connect", 1.0), ("socket", 1.0), ("failover", 60.0)),
                      notes="failover_v2 aurora-mysql pure Python", follows_topology=True)
INFOS = {"mysql-connector": CONNECTOR, "pymysql": PYMYSQL, "aws-wrapper": WRAPPER}


def rows(start: int, count: int = 10, seed: int = 7) -> Tuple[Tuple[int, int], ...]:
    """`count` rows, newest (highest id) first, with deterministic values."""
    return tuple((start - i, (start - i) * 7919 * seed % 32768) for i in range(count))


def probe(endpoint: str, backend: str, state: State = State.OK, address: Optional[str] = "127.0.10.11",
          previous: Optional[str] = None, op: Optional[Op] = None, op_started: Optional[float] = None,
          stalled_for: float = 0.0, first_id: int = 7711, nrows: int = 10, ops: float = 18.0,
          history: Sequence[int] = (17, 18, 19, 18, 18, 17, 18, 19, 18, 18, 18, 17, 18, 18, 19, 18, 18),
          error: Optional[ErrorInfo] = None, info: Optional[BackendInfo] = None,
          iterations: int = 1234, longest_stall: float = 0.0) -> ProbeView:
    snap = Snapshot(probe="%s/%s" % (endpoint, backend), endpoint=endpoint, backend=backend,
                    state=State.OK if state == State.STALLED else state, op=op, op_started=op_started,
                    rows=rows(first_id, nrows, seed=len(endpoint) + len(backend)), address=address,
                    previous_address=previous, iterations=iterations, last_error=error,
                    latency=(("INSERT", 0.002), ("COMMIT", 0.001), ("SELECT", 0.001)))
    return ProbeView(snapshot=snap, info=info or INFOS.get(backend, PYMYSQL), state=state,
                     stalled_for=stalled_for, ops_per_s=ops, history=tuple(history),
                     longest_stall=longest_stall)


def endpoint(name: str, addresses: Sequence[str] = ("127.0.10.11",), previous: Sequence[str] = (),
             error: Optional[str] = None, host: Optional[str] = None,
             topology: Sequence[str] = ()) -> EndpointView:
    host = host or "%s.cluster-lab.local" % name
    return EndpointView(name=name, host=host,
                        resolution=Resolution(host, addresses=tuple(addresses), ttl=5, error=error),
                        previous_addresses=tuple(previous), topology=tuple(topology))


def failover_view(now: float = 1000.0, ts: float = 1700000000.0, stalled_for: float = 12.3,
                  events: Iterable[Event] = (), status: Sequence[str] = (),
                  keys: Sequence[Tuple[str, str]] = (("f", "failover aurora"),)) -> View:
    """2 endpoints x 2 backends, mid-failover: mysql-connector stalled, PyMySQL recovered."""
    probes = (
        probe("aurora", "mysql-connector", State.STALLED, address="127.0.10.11", op=Op.INSERT,
              op_started=now - stalled_for, stalled_for=stalled_for, first_id=7711, ops=0,
              history=(18, 18, 17, 18, 19, 18, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)),
        probe("aurora", "pymysql", State.OK, address="127.0.10.12", previous="127.0.10.11", first_id=7802,
              ops=17, history=(18, 18, 17, 18, 19, 18, 3, 0, 0, 0, 2, 9, 16, 17, 18, 17, 17),
              longest_stall=1.0),
        probe("rds", "mysql-connector", State.OK, address="127.0.20.21", first_id=5419, ops=19),
        probe("rds", "pymysql", State.OK, address="127.0.20.21", first_id=5522, ops=18),
    )
    endpoints = (
        endpoint("aurora", ("127.0.10.12",), previous=("127.0.10.11",)),
        endpoint("rds", ("127.0.20.21",)),
    )
    if not events:
        events = default_events(ts)
    return View(ts=ts, probes=probes, endpoints=endpoints, events=tuple(events), status=tuple(status),
                keys=tuple(keys))


def demo_view(now: float = 1000.0, ts: float = 1700000000.0, stalled_for: float = 4.2,
              backends: Sequence[str] = ("mysql-connector", "pymysql", "aurora/aws-wrapper")) -> View:
    """The demo's probes (fiswatch.commands.demo.demo_backends) between the promotion and the DNS change:
    mysql-connector hangs, PyMySQL waits for DNS, the wrapper writes to the promoted instance."""
    from fiswatch.backends.registry import parse_backend_spec

    specs = [parse_backend_spec(b) for b in backends]
    lost = ErrorInfo(2013, "lost", "Lost connection to MySQL server during query (timed out)")
    probes = []
    for ep, addr in (("aurora", "127.0.10.1"), ("rds", "127.0.10.3")):
        for n, spec in enumerate(s for s in specs if not s.endpoints or ep in s.endpoints):
            first = (7711 if ep == "aurora" else 5419) + 131 * n
            if ep == "rds":
                probes.append(probe(ep, spec.label, State.OK, address=addr, first_id=first, ops=19))
            elif spec.name == "mysql-connector":
                probes.append(probe(ep, spec.label, State.STALLED, address=addr, op=Op.INSERT,
                                    op_started=now - stalled_for, stalled_for=stalled_for, first_id=first, ops=0,
                                    history=(18, 18, 17, 18, 19, 18, 4, 0, 0, 0, 0)))
            elif spec.name == "aws-wrapper":
                snap_probe = probe(ep, spec.label, State.OK, address="127.0.10.2", previous=addr, first_id=first,
                                   ops=17, history=(18, 18, 17, 18, 19, 18, 3, 0, 9, 17, 18))
                snap = dataclasses.replace(snap_probe.snapshot, failovers=1)
                probes.append(dataclasses.replace(snap_probe, snapshot=snap))
            else:
                probes.append(probe(ep, spec.label, State.RECONNECTING, address=addr, first_id=first, ops=0,
                                    error=lost, history=(18, 18, 17, 18, 19, 18, 3, 0, 0, 0, 0)))
    endpoints = (endpoint("aurora", ("127.0.10.1",), host="fiswatch-lab.cluster-c0ffee.lab.rds.local"),
                 endpoint("rds", ("127.0.10.3",), host="fiswatch-lab-mysql.c0ffee.lab.rds.local"))
    t = ts - 6
    events = [
        E.lab("aurora", "blackhole", "fiswatch-lab-instance-1 fenced", crash=False, ts=t),
        E.state("aurora/mysql-connector", "aurora", "mysql-connector", "STALLED", previous="OK", op="INSERT",
                address="127.0.10.1", ts=t + 2),
        E.lab("aurora", "promote", "fiswatch-lab-instance-2 promoted", crash=False, ts=t + 3),
        E.failover("aurora/aws-wrapper", "aurora", op="COMMIT", seconds=3.3, in_transaction=True,
                   write_in_doubt=True, error="failover-in-doubt", from_="127.0.10.1", to="127.0.10.2", ts=t + 3.4),
    ]
    return View(ts=ts, probes=tuple(probes), endpoints=endpoints, events=tuple(events),
                keys=(("f", "failover aurora"), ("r", "failover rds")))


def screen_columns(lines: Sequence[str]) -> List[List[str]]:
    """The probe columns on a painted screen, each as its cells top to bottom (under its endpoint header)."""
    columns: List[List[str]] = []
    band: Optional[List[List[str]]] = None
    for line in lines:
        if line.startswith(("AURORA", "RDS", "-- events")):
            if band:
                columns += [list(c) for c in zip(*[row for row in band if len(row) == len(band[0])])]
            band = [] if not line.startswith("-- events") else None
            continue
        if band is not None:
            band.append([cell.strip() for cell in line.split("|")])
    return columns


def column_facts(column: Sequence[str]) -> Tuple[Optional[str], Optional[str], int]:
    """(state, address, rows shown) of one screen column."""
    import re

    state = next((c for c in column if re.match(r"(OK|STALLED|RECONNECTING|ERROR|CONNECTING)\b", c)), None)
    address = next((c for c in column if re.match(r"127\.\d+\.\d+\.\d+", c)), None)
    return state, address, sum(1 for c in column if re.match(r"\(\d+, \d+\)$", c))


def default_events(ts: float) -> List[Event]:
    t = ts - 20
    return [
        E.lab("aurora", "start", "failover of aurora", crash=False, ts=t),
        E.lab("aurora", "blackhole", "writer stops answering", crash=False, ts=t + 1),
        E.state("aurora/mysql-connector", "aurora", "mysql-connector", "STALLED", previous="OK", op="INSERT",
                address="127.0.10.11", ts=t + 3),
        E.error("aurora/pymysql", "aurora", code=2013, kind="lost",
                message="Lost connection to MySQL server during query", op="INSERT", ts=t + 3.2),
        E.write("rds/pymysql", "rds", id=5500, value=3, address="x", ts=t + 4),
        E.dns("aurora", "aurora.cluster-lab.local", addresses=[], previous=["127.0.10.11"], ttl=5, error="empty",
              ts=t + 6),
        E.lab("aurora", "promote", "reader promoted to writer", crash=False, ts=t + 8),
        E.dns("aurora", "aurora.cluster-lab.local", addresses=["127.0.10.12"], previous=[], ttl=5, ts=t + 9),
        E.state("aurora/pymysql", "aurora", "pymysql", "OK", previous="RECONNECTING", address="127.0.10.12",
                ts=t + 10),
    ]


class FakeSource:
    """A View source that changes every call, like the monitor's: rows grow, ages count."""

    def __init__(self, started: float, demo: bool = False) -> None:
        self.started = started
        self.calls = 0
        self.paused = False
        self.demo = demo  # the demo's probes (three Aurora columns) instead of the workshop's four

    def toggle_pause(self) -> None:
        self.paused = not self.paused

    def __call__(self) -> View:
        self.calls += 1
        now = time.monotonic()
        make = demo_view if self.demo else failover_view
        base = make(now=now, ts=time.time(), stalled_for=now - self.started)
        grown = []
        for p in base.probes:
            if p.state == State.OK:
                snap = p.snapshot
                first = snap.rows[0][0] + self.calls
                snap = dataclasses.replace(snap, rows=rows(first, 10, seed=3))
                p = ProbeView(snap, p.info, p.state, p.stalled_for, p.ops_per_s, p.history, p.longest_stall)
            grown.append(p)
        return View(ts=base.ts, probes=tuple(grown), endpoints=base.endpoints, events=base.events,
                    keys=base.keys, paused=self.paused, status=("lab: aurora failover in progress (step promote)",))


def _park_forever() -> None:
    """A thread blocked in recv() on a loopback socket that never answers."""
    import socket
    import threading

    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    client = socket.create_connection(server.getsockname(), timeout=5)
    client.settimeout(None)
    threading.Thread(target=client.recv, args=(1,), daemon=True, name="stuck-probe").start()
    _park_forever.keep = (server, client)  # type: ignore[attr-defined]


def main(argv: Sequence[str]) -> int:
    import threading

    from fiswatch.ui.screen import run_dashboard
    from fiswatch.ui.shell import DashboardUnavailable

    _park_forever()
    stop = threading.Event()
    calls: Dict[str, int] = {}

    def count(name: str):
        def action() -> None:
            calls[name] = calls.get(name, 0) + 1
        return action

    source = FakeSource(time.monotonic(), demo="--demo" in argv)
    actions = {"f": count("f")}
    if "--no-pause-action" not in argv:  # like the runner: p pauses the source, View.paused says so
        pause = count("pause")

        def toggle() -> None:
            pause()
            source.toggle_pause()

        actions["pause"] = toggle
    if "--stop-after" in argv:
        delay = float(argv[list(argv).index("--stop-after") + 1])
        threading.Timer(delay, stop.set).start()
    try:
        run_dashboard(source, actions, stop, refresh=0.1, confirm_keys=("f",))
    except DashboardUnavailable as exc:
        print("dashboard_app: %s" % exc)
        return 1
    print("summary: dashboard closed after %d frames; actions %s"
          % (source.calls, ",".join("%s=%d" % kv for kv in sorted(calls.items())) or "none"))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
