"""Figure 2: stall detection latency. A FaultProxy sits between the probes and MariaDB;
each trial blackholes it (packets stop, no FIN, no RST, like a fenced Aurora writer) and
measures the time until the monitor's STALLED `state` event reaches a runner sink, i.e.
appears in the event stream. The baseline is --stall-after itself: the target is
p95 <= stall_after + 0.25 s. The probes have a read timeout longer than stall_after so
they stall first and recover by themselves after the proxy passes traffic again.
"""
import threading
import time
from typing import Dict, List, Optional

from fiswatch import events as E
from fiswatch.bench.common import BenchDb, Figure, median, percentile, truncate, wait_until
from fiswatch.model import BackendSpec

TABLE = "stall"


class StateLog:
    """A runner sink remembering when each probe's state events arrived."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: List[tuple] = []  # (monotonic, probe, state)

    def __call__(self, view, events) -> None:
        now = time.monotonic()
        fresh = [(now, e.get("probe"), e.get("state")) for e in events if e.event == E.STATE]
        if fresh:
            with self.lock:
                self.seen.extend(fresh)

    def first(self, probe: str, state: str, after: float) -> Optional[float]:
        with self.lock:
            for t, p, s in self.seen:
                if t >= after and p == probe and s == state:
                    return t
        return None


def run(db: BenchDb, quick: bool) -> Figure:
    from fiswatch.lab.proxy import FaultProxy
    from fiswatch.engine.runner import Output, RunOptions, Runner

    trials, stall_after, read_timeout = (4, 0.5, 1) if quick else (20, 1.0, 2)
    fig = Figure(2, "Stall detection latency: proxy silent -> STALLED in the event stream")
    truncate(db, [TABLE])
    proxy = FaultProxy("127.0.0.1", 0, db.host, db.port, name="bench-stall").start()
    host, port = proxy.address
    from dataclasses import replace

    endpoint = replace(db.endpoint("stall", TABLE), host=host, port=port)
    specs = [BackendSpec("mysql-connector", (("read_timeout", str(read_timeout)),)),
             BackendSpec("pymysql", (("read_timeout", str(read_timeout)),))]
    log = StateLog()
    runner = Runner([endpoint], specs, RunOptions(interval=0.05, stall_after=stall_after),
                    outputs=[Output(log, "bench")])
    runner.start()
    latencies: Dict[str, List[float]] = {p.id: [] for p in runner.probes}
    missed = 0
    try:
        for _ in range(trials):
            start = {p.id: p.snapshot.iterations for p in runner.probes}
            if not wait_until(lambda: all(p.snapshot.iterations >= start[p.id] + 3 for p in runner.probes), 30.0):
                raise RuntimeError("probes did not make progress through the proxy: %s"
                                   % [str(p.snapshot.last_error) for p in runner.probes])
            t0 = time.monotonic()
            proxy.set_mode("blackhole")
            for p in runner.probes:
                seen = wait_until(lambda: log.first(p.id, "STALLED", t0), stall_after + 10.0)
                if seen is None:
                    missed += 1
                else:
                    latencies[p.id].append(seen - t0)
            proxy.set_mode("pass")
    finally:
        runner.stop()
        proxy.stop()
    allv = [v for vs in latencies.values() for v in vs]
    p95 = percentile(allv, 95)
    fig.add("p95 latency", p95, "s", stall_after + 0.25, "<=",
            "%d samples (%d trials x %d probes), stall-after %gs" % (len(allv), trials, len(specs), stall_after))
    fig.add("p50 latency", median(allv), "s", note="baseline: stall-after = %gs" % stall_after)
    fig.add("p95 beyond stall-after", (p95 - stall_after) if p95 is not None else None, "s", 0.25, "<=")
    fig.add("max latency", max(allv) if allv else None, "s")
    fig.add("trials without STALLED", float(missed), "", 0.0, "<=")
    fig.details = {"stall_after": stall_after, "read_timeout": read_timeout, "trials": trials,
                   "latencies_s": {k: [round(v, 3) for v in vs] for k, vs in latencies.items()}}
    return fig
