"""Figure 3: recovery after lab failovers, a client beside the workshop's own loop.

Through the same fast lab failovers of the Aurora cluster endpoint and of the RDS
instance endpoint (interleaved, `repeats` of each), every client in `CLIENTS` and the
workshop's reconnect loop write to the endpoint side by side. Per failover and client:
the longest gap between acknowledged writes that overlaps the injected outage (the lab's
`start.outage_start` -> `done.outage_end`). Reported per target: the median of
(client gap - loop gap), with its spread, and each one's gap beyond the outage.

The baseline is the workshop's PyMySQL script reduced to one endpoint: INSERT, COMMIT,
SELECT-10, 50 ms pause; 1 s connect/read/write timeouts; on any error close, and the next
pass reconnects (a failed reconnect is swallowed and retried on the next pass).

To add a client (e.g. another backend), append one `Client` to `CLIENTS`, or pass your
own list to `figure()`: a name and a function endpoint, nameserver -> Writer.
"""
import random
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from fiswatch import events as E
from fiswatch.bench.common import Figure, known, median, percentile

TARGETS = ("aurora", "rds")
SETTLE = 3.0  # seconds of steady writing before each failover
RECOVER = 4.0  # seconds after a failover returns, for every client to write again


class Writer:
    """What figure 3 needs of a client: wall times of acknowledged writes, and stop()."""

    writes: List[float]

    def stop(self) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class Client:
    name: str  # as the table says it: "PyMySQL probe"
    start: Callable[[Any, Tuple[str, int]], Writer]  # (Endpoint, nameserver) -> a running Writer


class WorkshopLoop(threading.Thread, Writer):
    """The workshop's PyMySQL script, reduced to one endpoint (see the module's doc)."""

    def __init__(self, endpoint: Any, nameserver: Tuple[str, int]) -> None:
        threading.Thread.__init__(self, name="workshop-loop " + endpoint.name, daemon=True)
        from fiswatch.engine.resolve import Resolver

        self.endpoint = endpoint
        self.resolver = Resolver(nameserver)
        self.writes = []  # wall time of each acknowledged COMMIT
        self._stop_event = threading.Event()

    def _connect(self) -> Any:
        import pymysql

        address = self.resolver.resolve(self.endpoint.host).address
        if address is None:
            raise OSError("no address")
        ep = self.endpoint
        return pymysql.connect(host=address, port=ep.port, user=ep.user, password=ep.password.reveal(),
                               database=ep.database, connect_timeout=1, read_timeout=1, write_timeout=1)

    def run(self) -> None:
        conn = None
        rng = random.Random(3)
        table = self.endpoint.table
        while not self._stop_event.is_set():
            try:
                if conn is None:
                    conn = self._connect()
                cur = conn.cursor()
                cur.execute("INSERT INTO `%s` (value) VALUES (%%s)" % table, (rng.randint(0, 32767),))
                conn.commit()
                self.writes.append(time.time())
                cur.execute("SELECT id, value FROM `%s` ORDER BY id DESC LIMIT 10" % table)
                cur.fetchall()
            except Exception:  # noqa: BLE001
                try:
                    if conn is not None:
                        conn.close()
                except Exception:  # noqa: BLE001
                    pass
                conn = None
            self._stop_event.wait(0.05)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(5.0)


def start_workshop_loop(endpoint: Any, nameserver: Tuple[str, int]) -> Writer:
    loop = WorkshopLoop(endpoint, nameserver)
    loop.start()
    return loop


class ProbeWriter(Writer):
    """A fiswatch probe (a whole Runner: probe, monitor, DNS watcher) and its `write` events
    (`read` events for a read endpoint's probe: the times it read)."""

    def __init__(self, endpoint: Any, nameserver: Tuple[str, int], backend: str) -> None:
        from fiswatch.backends.registry import parse_backend_spec
        from fiswatch.engine.runner import Output, RunOptions, Runner

        self.writes = []
        self.kind = E.READ if endpoint.reads else E.WRITE
        self.runner = Runner([endpoint], [parse_backend_spec(backend)],
                             RunOptions(interval=0.05, stall_after=2.0, nameserver=(nameserver[0], nameserver[1])),
                             outputs=[Output(self._written, "bench")])
        self.runner.start()

    def _written(self, view: Any, events: List[Any]) -> None:
        self.writes.extend(e.ts for e in events if e.event == self.kind)

    def stop(self) -> None:
        self.runner.stop()


def probe_client(backend: str, name: str) -> Client:
    return Client(name, lambda endpoint, nameserver: ProbeWriter(endpoint, nameserver, backend))


BASELINE = Client("workshop loop", start_workshop_loop)
CLIENTS: List[Client] = [probe_client("pymysql", "PyMySQL probe")]


def longest_gap(times: Sequence[float], start: float, end: float) -> Optional[float]:
    """Longest gap between consecutive writes that overlaps [start, end].

    >>> longest_gap([1.0, 2.0, 5.0, 6.0], 2.5, 3.0)
    3.0
    """
    times = sorted(times)
    best = None
    for a, b in zip(times, times[1:]):
        if b >= start and a <= end:
            best = b - a if best is None else max(best, b - a)
    return best


def spread(values: Sequence[Optional[float]]) -> str:
    vals = [v for v in values if v is not None]
    if not vals:
        return "no values"
    return "min %.3f, p25 %.3f, p75 %.3f, max %.3f" % (min(vals), known(percentile(vals, 25)), known(percentile(vals, 75)),
                                                       max(vals))


def _diff(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return None if a is None or b is None else a - b


def figure(lab_dir: str, info: Any, repeats: int, clients: Sequence[Client] = ()) -> Figure:
    from fiswatch.lab.api import failover

    clients = list(clients or CLIENTS)
    fig = Figure(3, "Recovery after lab failovers: client gap vs the workshop's loop (Aurora and RDS)")
    nameserver = tuple(info.nameserver)
    running: Dict[Tuple[str, str], Writer] = {}
    rows: List[Dict[str, Any]] = []
    try:
        for target in TARGETS:
            endpoint = info.endpoint(target)
            running[(target, BASELINE.name)] = BASELINE.start(endpoint, nameserver)
            for client in clients:
                running[(target, client.name)] = client.start(endpoint, nameserver)
        for i in range(repeats * len(TARGETS)):
            target = TARGETS[i % len(TARGETS)]
            time.sleep(SETTLE)
            steps: List[Any] = []
            failover(lab_dir, target, emit=steps.append, profile="fast")
            time.sleep(RECOVER)
            start = next(e.get("outage_start") for e in steps if e.get("step") == "start")
            end = next(e.get("outage_end") for e in steps if e.get("step") == "done")
            row: Dict[str, Any] = {"target": target, "outage_s": round(end - start, 3), "gaps_s": {}}
            for name in [BASELINE.name] + [c.name for c in clients]:
                gap = longest_gap(list(running[(target, name)].writes), start, end)
                row["gaps_s"][name] = None if gap is None else round(gap, 3)
            rows.append(row)
    finally:
        for writer in running.values():
            try:
                writer.stop()
            except Exception:  # noqa: BLE001
                pass
    for target in TARGETS:
        mine = [r for r in rows if r["target"] == target]
        outages = [r["outage_s"] for r in mine]
        loop_gaps = [r["gaps_s"][BASELINE.name] for r in mine]
        loop_excess = [_diff(g, o) for g, o in zip(loop_gaps, outages)]
        loop_median = median(loop_excess)
        for client in clients:
            gaps = [r["gaps_s"][client.name] for r in mine]
            diffs = [_diff(g, b) for g, b in zip(gaps, loop_gaps)]
            excess = [_diff(g, o) for g, o in zip(gaps, outages)]
            fig.add("%s: %s gap - loop gap" % (target, client.name), median(diffs), "s", 0.1, "<=",
                    "median of %d fast %s failovers (outage median %.2f s); spread %s"
                    % (len(mine), target, median(outages) or 0.0, spread(diffs)))
            fig.add("%s: %s gap - outage" % (target, client.name), median(excess), "s",
                    None if loop_median is None else round(loop_median, 4), "<=",
                    "target: the workshop loop's, same failovers; spread %s" % spread(excess))
        fig.add("%s: workshop loop gap - outage" % target, loop_median, "s",
                note="baseline: PyMySQL, 1 s timeouts, retry every pass, 50 ms pause; spread %s"
                % spread(loop_excess))
    fig.details = {"failovers": rows, "clients": [BASELINE.name] + [c.name for c in clients]}
    return fig
