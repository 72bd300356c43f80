"""Figure 1: probe overhead. A fiswatch probe (a whole Runner: probe thread, monitor
ticking every 0.1 s, DNS watcher) vs. a bare loop with the same driver, the same
connection options and the same three statements, same server, run alternately.
Both run at full rate (no pause between rounds) so the driver and server are the limit.
"""
import random
import time
from typing import Dict, List

from fiswatch.bench.common import BenchDb, Figure, median, truncate, wait_until
from fiswatch.model import BackendSpec

BACKENDS = ("mysql-connector", "pymysql")
TABLE = "overhead"


class BareLoop:
    """INSERT / COMMIT / SELECT-10 in a plain loop in the calling thread, on one connection."""

    def __init__(self, db: BenchDb, spec: BackendSpec) -> None:
        from fiswatch.backends.registry import make_backend

        self.conn = make_backend(spec).connect(db.host, db.port, db.user, db.password.reveal(), db.database)
        self.insert = "INSERT INTO `%s` (value) VALUES (%%s)" % TABLE
        self.select = "SELECT id, value FROM `%s` ORDER BY id DESC LIMIT 10" % TABLE
        self.rng = random.Random(1)

    def rate(self, seconds: float) -> float:
        """Rounds per second over `seconds`."""
        rounds = 0
        t0 = time.perf_counter()
        end = t0 + seconds
        while True:
            cur = self.conn.cursor()
            cur.execute(self.insert, (self.rng.randint(0, 32767),))
            self.conn.commit()
            cur.execute(self.select)
            cur.fetchall()
            cur.close()
            rounds += 1
            now = time.perf_counter()
            if now >= end:
                return rounds / (now - t0)

    def close(self) -> None:
        self.conn.close()


class ProbeLoop:
    """One fiswatch probe inside a real Runner (monitor thread, DNS watcher), interval 0.

    Between its segments the runner is paused (the probe finishes its round and waits),
    so the bare loop runs alone.
    """

    def __init__(self, db: BenchDb, spec: BackendSpec) -> None:
        from fiswatch.runner import RunOptions, Runner

        self.runner = Runner([db.endpoint("bench", TABLE)], [spec], RunOptions(interval=0.0, stall_after=2.0))
        self.runner.start()
        self.probe = self.runner.probes[0]
        if not wait_until(lambda: self.probe.snapshot.iterations >= 20, 30.0):
            self.close()
            raise RuntimeError("probe %s made no progress: %s" % (spec.label, self.probe.snapshot.last_error))
        self.pause()

    def pause(self) -> None:
        if not self.runner.monitor.paused:
            self.runner.toggle_pause()
        n = self.probe.snapshot.iterations
        # paused once the round in flight is over: no new iteration for 50 ms
        last = [n, time.monotonic()]

        def quiet() -> bool:
            m = self.probe.snapshot.iterations
            if m != last[0]:
                last[0], last[1] = m, time.monotonic()
            return time.monotonic() - last[1] > 0.05
        wait_until(quiet, 10.0)

    def rate(self, seconds: float) -> float:
        self.runner.toggle_pause()
        n0, t0 = self.probe.snapshot.iterations, time.perf_counter()
        time.sleep(seconds)
        n1, t1 = self.probe.snapshot.iterations, time.perf_counter()
        self.pause()
        return (n1 - n0) / (t1 - t0)

    def close(self) -> None:
        self.runner.stop()
        self.probe.join(5.0)


def compare(db: BenchDb, spec: BackendSpec, pairs: int, seconds: float) -> Dict[str, List[float]]:
    """Alternate probe and bare segments (order flipped every pair); the per-pair ratios."""
    truncate(db, [TABLE])
    bare = BareLoop(db, spec)
    probe = ProbeLoop(db, spec)
    out: Dict[str, List[float]] = {"bare": [], "probe": [], "ratio": []}
    try:
        bare.rate(0.3)  # warm-up
        for i in range(pairs):
            if i % 2 == 0:
                b = bare.rate(seconds)
                p = probe.rate(seconds)
            else:
                p = probe.rate(seconds)
                b = bare.rate(seconds)
            out["bare"].append(round(b, 1))
            out["probe"].append(round(p, 1))
            out["ratio"].append(round(p / b, 4) if b else 0.0)
    finally:
        probe.close()
        bare.close()
    return out


def run(db: BenchDb, quick: bool) -> Figure:
    fig = Figure(1, "Probe overhead: fiswatch probe vs bare loop (rounds/s, full rate)")
    pairs, seconds = (4, 0.5) if quick else (16, 1.0)
    per_backend = {}
    for name in BACKENDS:
        result = compare(db, BackendSpec(name), pairs, seconds)
        per_backend[name] = result
        fig.add("%s probe/bare" % name, median(result["ratio"]), "x", 0.95, ">=",
                "median of %d alternating %gs pairs; bare %.0f/s, probe %.0f/s"
                % (pairs, seconds, median(result["bare"]), median(result["probe"])))
    fig.details = {"pairs": pairs, "seconds_each": seconds, "per_backend": per_backend}
    return fig
