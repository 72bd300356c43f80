"""Figure 7a: memory. RSS of a `fiswatch watch --plain` child (2 endpoints x 2 backends on
the local server, interval 0 = full rate, output to /dev/null), sampled every few
seconds with psutil; growth = RSS at the end minus RSS after the warm-up (the first fifth
of the run, at least 10 s). Rounds done are read from the table afterwards.
"""
import subprocess
import time
from typing import List

from fiswatch.bench.common import BenchDb, Figure, child_env, fiswatch_argv, known, median, root_connect, truncate
from fiswatch.config.checks import password_env_name


def run(db: BenchDb, quick: bool, minutes: float) -> Figure:
    import psutil

    seconds = 20.0 if quick else minutes * 60.0
    warmup = max(10.0, seconds / 5.0)
    step = 2.0 if quick else 5.0
    fig = Figure(7, "Memory a: RSS growth of a full-rate run")
    truncate(db, ["test"])
    env = child_env({password_env_name("a"): db.password.reveal(), password_env_name("b"): db.password.reveal()})
    argv = fiswatch_argv("watch", "--endpoint", "a=%s" % db.url(), "--endpoint", "b=%s" % db.url(),
                         "--interval", "0", "--plain", "--duration", "%g" % (seconds + 5))
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL)
    samples: List[List[float]] = []
    try:
        ps = psutil.Process(proc.pid)
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            time.sleep(step)
            samples.append([round(time.monotonic() - t0, 1), round(ps.memory_info().rss / 2 ** 20, 2),
                            ps.num_threads(), ps.num_fds()])
    finally:
        proc.wait(60)
    conn = root_connect(db.host, db.port, db.database)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM test")
            rounds = int(cur.fetchone()[0])
    finally:
        conn.close()
    after = [s for s in samples if s[0] >= warmup]
    base = known(median([s[1] for s in after[:3]]))
    end = known(median([s[1] for s in samples[-3:]]))
    growth = end - base
    span = samples[-1][0] - after[0][0]
    fig.add("RSS growth after warm-up", growth, "MB", 5.0, "<=",
            "%.0f s run, warm-up %.0f s, RSS %.1f -> %.1f MB, %d rounds (%.0f/s)"
            % (seconds, warmup, base, end, rounds, rounds / seconds))
    fig.add("RSS growth per 10 min", growth / span * 600.0 if span > 0 else None, "MB/10min",
            note="extrapolated from the measured slope")
    fig.add("RSS per 1000 rounds", growth / (rounds * span / seconds) * 1000 if rounds else None, "MB",
            note="growth over the rounds done after warm-up")
    fig.details = {"seconds": seconds, "warmup_s": warmup, "rounds": rounds,
                   "samples_t_rss_threads_fds": samples}
    return fig
