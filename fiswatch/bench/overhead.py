"""Figure 1: probe overhead. A fiswatch probe (a whole Runner: probe thread, monitor
ticking every 0.1 s, DNS watcher) vs. a bare loop with the same driver, the same
connection options and the same three statements, same server, run alternately.
Both run at full rate (no pause between rounds) so the driver and server are the limit.

On a shared machine the rate of a 1 s segment swings with other processes' load, so the
figure also reports what load barely moves: this process's CPU time (user + system,
getrusage) per round in the same segments, and fiswatch's own work per round measured
alone (`own_cost`: `Probe.run_round` against an in-memory connection, thread CPU time).
"""
import random
import resource
import time
from typing import Any, Dict, List

from fiswatch.bench.common import BenchDb, Figure, known, median, truncate, wait_until
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
        """Rounds per second over `seconds`; `cpu` = process CPU seconds per round."""
        c0 = _cpu()
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
                self.cpu = (_cpu() - c0) / rounds
                return rounds / (now - t0)

    def close(self) -> None:
        self.conn.close()


class ProbeLoop:
    """One fiswatch probe inside a real Runner (monitor thread, DNS watcher), interval 0.

    Between its segments the runner is paused (the probe finishes its round and waits),
    so the bare loop runs alone.
    """

    def __init__(self, db: BenchDb, spec: BackendSpec) -> None:
        from fiswatch.engine.runner import RunOptions, Runner

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
        c0 = _cpu()
        self.runner.toggle_pause()
        n0, t0 = self.probe.snapshot.iterations, time.perf_counter()
        time.sleep(seconds)
        n1, t1 = self.probe.snapshot.iterations, time.perf_counter()
        self.cpu = (_cpu() - c0) / max(1, n1 - n0)
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
    out: Dict[str, List[float]] = {"bare": [], "probe": [], "ratio": [], "bare_cpu_us": [], "probe_cpu_us": []}
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
            out["bare_cpu_us"].append(round(bare.cpu * 1e6, 1))
            out["probe_cpu_us"].append(round(probe.cpu * 1e6, 1))
    finally:
        probe.close()
        bare.close()
    return out


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class _MemCursor:
    lastrowid = 1
    rows = [(i, i * 7) for i in range(110, 100, -1)]

    def execute(self, sql: str, args: Any = None) -> None:
        pass

    def fetchall(self) -> List[Any]:
        return self.rows

    def close(self) -> None:
        pass


class _MemConnection:
    """Answers at once, in memory: what is left of a round is fiswatch's own work."""

    def cursor(self) -> _MemCursor:
        return _MemCursor()

    def commit(self) -> None:
        pass


def own_cost(spec: BackendSpec, rounds: int = 20000, repeats: int = 7) -> float:
    """Seconds of thread CPU per `Probe.run_round` on an in-memory connection (median of repeats):
    snapshot swaps, the write event, latency bookkeeping, the rows tuple."""
    from fiswatch.backends.registry import make_backend
    from fiswatch.model import Endpoint
    from fiswatch.engine.probe import Probe

    probe = Probe(Endpoint("bench", "127.0.0.1", table=TABLE), spec, make_backend(spec), lambda event: None)
    conn = _MemConnection()
    times = []
    for _ in range(repeats):
        t0 = time.thread_time()
        for _ in range(rounds):
            probe.run_round(conn)
        times.append((time.thread_time() - t0) / rounds)
    return known(median(times))


def run(db: BenchDb, quick: bool) -> Figure:
    fig = Figure(1, "Probe overhead: fiswatch probe vs bare loop (rounds/s, full rate)")
    pairs, seconds = (4, 0.5) if quick else (16, 1.0)
    per_backend = {}
    for name in BACKENDS:
        result: Dict[str, Any] = compare(db, BackendSpec(name), pairs, seconds)
        per_backend[name] = result
        ratios = sorted(result["ratio"])
        fig.add("%s probe/bare" % name, median(ratios), "x", 0.95, ">=",
                "median of %d alternating %gs pairs (spread %.2f-%.2f); bare %.0f/s, probe %.0f/s"
                % (pairs, seconds, ratios[0], ratios[-1], known(median(result["bare"])), known(median(result["probe"]))))
        bare_cpu, probe_cpu = known(median(result["bare_cpu_us"])), known(median(result["probe_cpu_us"]))
        extra = [p - b for p, b in zip(result["probe_cpu_us"], result["bare_cpu_us"])]
        fig.add("%s probe CPU - bare CPU per round" % name, median(extra), "us",
                note="process CPU (user+sys) per round, same segments: bare %.0f us, probe %.0f us "
                "(monitor thread included)" % (bare_cpu, probe_cpu))
        own = own_cost(BackendSpec(name), 5000 if quick else 20000) * 1e6
        result["own_us"] = round(own, 2)
        fig.add("%s fiswatch's own work per round" % name, own, "us",
                note="Probe.run_round on an in-memory connection, thread CPU; %.1f%% of the bare loop's CPU per "
                "round" % (100.0 * own / bare_cpu if bare_cpu else 0.0))
    fig.details = {"pairs": pairs, "seconds_each": seconds, "per_backend": per_backend}
    return fig
