"""Figures 3 and 7b, on a real local lab (`fiswatch.lab.api`).

3: Aurora failover (profile 'fast'): the PyMySQL probe's longest gap between acknowledged
   writes minus the outage the lab injected (`lab` events: start.outage_start ->
   done.outage_end). Baseline beside it: a bare reconnect loop in the workshop's style
   (PyMySQL, 1 s timeouts, reconnect on any error, a failed reconnect retried next loop)
   measured in the same failovers.
7b: a `fiswatch watch --lab --plain` child through 20 failovers: its threads and file
   descriptors sampled after each one must stay bounded.
"""
import random
import shutil
import subprocess
import tempfile
import threading
import time
from typing import Any, Dict, List, Optional

from fiswatch.bench.common import Figure, child_env, fiswatch_argv, median


class BareWorkshopLoop(threading.Thread):
    """The workshop's PyMySQL script, reduced: INSERT, COMMIT, SELECT-10, 50 ms pause."""

    def __init__(self, endpoint: Any, nameserver: Any) -> None:
        super().__init__(name="bare-workshop-loop", daemon=True)
        from fiswatch.resolve import Resolver

        self.endpoint = endpoint
        self.resolver = Resolver(nameserver)
        self.writes: List[float] = []  # wall time of each acknowledged COMMIT
        self.stop = threading.Event()

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
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = self._connect()
                cur = conn.cursor()
                cur.execute("INSERT INTO `%s` (value) VALUES (%%s)" % table, (rng.randint(0, 32767),))
                conn.commit()
                self.writes.append(time.time())
                cur.execute("SELECT id, value FROM `%s` ORDER BY id DESC LIMIT 10" % table)
                cur.fetchall()
            except Exception:
                try:
                    if conn is not None:
                        conn.close()
                except Exception:
                    pass
                conn = None
            self.stop.wait(0.05)


def _longest_gap(times: List[float], start: float, end: float) -> Optional[float]:
    """Longest gap between consecutive writes that overlaps [start, end]."""
    times = sorted(times)
    best = None
    for a, b in zip(times, times[1:]):
        if b >= start and a <= end:
            best = b - a if best is None else max(best, b - a)
    return best


def failover_figure(lab_dir: str, info: Any, repeats: int) -> Figure:
    from fiswatch.lab.api import failover
    from fiswatch.model import BackendSpec
    from fiswatch.runner import RunOptions, Runner

    fig = Figure(3, "Recovery after a lab Aurora failover: write gap minus injected outage")
    aurora = next(e for e in info.endpoints if e.name == "aurora")
    runner = Runner([aurora], [BackendSpec("pymysql")], RunOptions(interval=0.05, stall_after=2.0,
                                                                   nameserver=tuple(info.nameserver)))
    writes: List[float] = []
    runner.sinks.append(lambda view, events: writes.extend(e.ts for e in events if e.event == "write"))
    bare = BareWorkshopLoop(aurora, tuple(info.nameserver))
    runner.start()
    bare.start()
    probe_excess, bare_excess, outages, rows = [], [], [], []
    try:
        for _ in range(repeats):
            time.sleep(3.0)  # both loops writing steadily again
            lab_events: List[Any] = []
            failover(lab_dir, "aurora", emit=lab_events.append, profile="fast")
            time.sleep(4.0)  # let both recover and write again
            start = next(e.get("outage_start") for e in lab_events if e.get("step") == "start")
            end = next(e.get("outage_end") for e in lab_events if e.get("step") == "done")
            outage = end - start
            pg = _longest_gap(writes, start, end)
            bg = _longest_gap(bare.writes, start, end)
            outages.append(outage)
            probe_excess.append(pg - outage if pg is not None else None)
            bare_excess.append(bg - outage if bg is not None else None)
            rows.append({"outage_s": round(outage, 3), "probe_gap_s": pg and round(pg, 3),
                         "bare_gap_s": bg and round(bg, 3)})
    finally:
        bare.stop.set()
        runner.stop()
        bare.join(5.0)
    fig.add("PyMySQL probe gap - outage", median(probe_excess), "s", 1.0 + 0.5, "<=",
            "median of %d fast failovers; read_timeout 1 s; outage median %.2f s" % (repeats, median(outages)))
    fig.add("bare workshop loop gap - outage", median(bare_excess), "s",
            note="baseline: PyMySQL, 1 s timeouts, reconnect on error, same failovers")
    fig.details = {"failovers": rows}
    return fig


def bounded_figure(lab_dir: str, failovers: int) -> Figure:
    """Threads and fds of a `watch --lab` child through `failovers` Aurora failovers."""
    import psutil

    from fiswatch.lab.api import failover

    fig = Figure(7, "Memory b: threads and file descriptors through lab failovers")
    proc = subprocess.Popen(fiswatch_argv("watch", "--lab", lab_dir, "--plain"), env=child_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    samples: List[Dict[str, float]] = []
    try:
        ps = psutil.Process(proc.pid)
        time.sleep(3.0)
        samples.append({"threads": ps.num_threads(), "fds": ps.num_fds(), "rss_mb": ps.memory_info().rss / 2 ** 20})
        for _ in range(failovers):
            failover(lab_dir, "aurora", profile="fast")
            time.sleep(2.5)  # reconnects done
            samples.append({"threads": ps.num_threads(), "fds": ps.num_fds(),
                            "rss_mb": round(ps.memory_info().rss / 2 ** 20, 1)})
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    first, later = samples[0], samples[1:]
    half = later[len(later) // 2:] or later
    # bounded = the second half of the failovers adds nothing over the first half
    thr_growth = max(s["threads"] for s in half) - max(s["threads"] for s in [first] + later[:len(later) // 2])
    fd_growth = max(s["fds"] for s in half) - max(s["fds"] for s in [first] + later[:len(later) // 2])
    fig.add("threads growth, 2nd half of failovers", float(thr_growth), "", 0.0, "<=",
            "%d failovers; threads %d at start, max %d" % (failovers, first["threads"],
                                                          max(s["threads"] for s in samples)))
    fig.add("fds growth, 2nd half of failovers", float(fd_growth), "", 0.0, "<=",
            "fds %d at start, max %d" % (first["fds"], max(s["fds"] for s in samples)))
    fig.details = {"samples": samples}
    return fig


def run(quick: bool) -> List[Figure]:
    from fiswatch.lab.api import LabNotRunning, lab_down, lab_up

    lab_dir = tempfile.mkdtemp(prefix="fiswatch-bench-lab-")
    base = "127.%d.%d" % (random.randint(20, 250), random.randint(1, 250))
    info = lab_up(lab_dir, base=base, port=3306, dns_port=random.randint(20000, 30000))
    try:
        from fiswatch.bench.wrapper import wrapper_available, wrapper_figure

        figs = [failover_figure(lab_dir, info, 1 if quick else 3)]
        if wrapper_available():  # Python >= 3.10 with the aws-wrapper extra
            figs.append(wrapper_figure(lab_dir, info, 1 if quick else 3, "fast" if quick else "realistic"))
        figs.append(bounded_figure(lab_dir, 3 if quick else 20))
    finally:
        try:
            lab_down(lab_dir)
        except LabNotRunning:
            pass
        shutil.rmtree(lab_dir, ignore_errors=True)  # ~400 MB of datadirs
    return figs
