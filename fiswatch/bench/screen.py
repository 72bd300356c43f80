"""Figure 4: screen cost.

a) One frame (layout.render + shell.paint) on a real curses terminal (a pty of 200x60)
   with 16 and with 64 probes; baseline in the same process: a bare curses paint of the
   same text without layout.
b) CPU of `fiswatch watch` (dashboard, default refresh, 4 probes at the default interval)
   minus CPU of the same run with --plain to /dev/null, alternately: the dashboard's own
   share of one core (the probes' driver work is the same in both runs and cancels out).
"""
import json
import os
import sys
import tempfile
from typing import Dict, List

from fiswatch.bench.common import BenchDb, Figure, child_env, fiswatch_argv, known, median, truncate
from fiswatch.bench.ptyrun import PtyChild
from fiswatch.config.checks import password_env_name

TABLE = "test"


def frame_times(probes: int, frames: int, cols: int = 200, rows: int = 60) -> Dict[str, List[float]]:
    fd, path = tempfile.mkstemp(prefix="fiswatch-bench-paint-", suffix=".json")
    os.close(fd)
    try:
        child = PtyChild([sys.executable, "-m", "fiswatch.bench.paintchild", str(probes), str(frames), path],
                         child_env(), cols=cols, rows=rows)
        _, status, _ = child.wait(120.0)
        if status != 0:
            raise RuntimeError("paint child for %d probes failed (status %d)" % (probes, status))
        with open(path) as fh:
            return json.load(fh)
    finally:
        os.unlink(path)


def watch_cpu(db: BenchDb, plain: bool, seconds: float) -> float:
    """CPU seconds (user+sys) of one `fiswatch watch` run of `seconds`, 2 endpoints x 2 backends."""
    args = ["watch", "--endpoint", "a=%s" % db.url(), "--endpoint", "b=%s" % db.url(),
            "--duration", "%g" % seconds]
    env = child_env({password_env_name("a"): db.password.reveal(), password_env_name("b"): db.password.reveal()})
    if plain:
        import subprocess

        proc = subprocess.Popen(fiswatch_argv(*(args + ["--plain"])), env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = status
    else:
        child = PtyChild(fiswatch_argv(*args), env, cols=200, rows=60)
        _, status, usage = child.wait(seconds + 60.0)
    if status != 0:
        raise RuntimeError("fiswatch watch%s exited with status %d" % (" --plain" if plain else "", status))
    return usage.ru_utime + usage.ru_stime


def run(db: BenchDb, quick: bool) -> Figure:
    fig = Figure(4, "Screen cost: frame time at 200x60, dashboard CPU")
    frames = 30 if quick else 200
    details: Dict[str, object] = {"frames": frames}
    # 64 probes need 7 bands of 10 columns at 200 wide: 67 lines; 60 shows 'too small'
    for probes, target, rows in ((16, 10.0, 60), (64, 30.0, 60), (64, 30.0, 67)):
        t = frame_times(probes, frames, 200, rows)
        fm, bare = median(t["frame_ms"]), known(median(t["bare_ms"]))
        note = "median of %d frames, render %.1f ms; bare curses paint of the same text %.2f ms" % (
            frames, known(median(t["render_ms"])), bare)
        if t.get("too_small_needs"):
            note += "; NOTE: %d probes do not fit 200x60 (layout asks for %sx%s), the frame is the " \
                    "'terminal too small' screen" % (probes, t["too_small_needs"][0], t["too_small_needs"][1])
        too_small = bool(t.get("too_small_needs"))
        fig.add("frame %d probes 200x%d" % (probes, rows), fm, "ms", None if too_small else target,
                "" if too_small else "<=", note)
        details["probes_%d_200x%d" % (probes, rows)] = {k: [round(x, 3) for x in v] if k.endswith("_ms") else v
                                         for k, v in t.items()}
    seconds, repeats = (8.0, 1) if quick else (60.0, 2)
    truncate(db, [TABLE])
    shares, runs = [], []
    for i in range(repeats):
        order = (False, True) if i % 2 == 0 else (True, False)
        cpu = {}
        for plain in order:
            cpu[plain] = watch_cpu(db, plain, seconds)
        runs.append({"dashboard_cpu_s": round(cpu[False], 2), "plain_cpu_s": round(cpu[True], 2)})
        shares.append((cpu[False] - cpu[True]) / seconds * 100.0)
    fig.add("dashboard CPU beyond --plain", median(shares), "% of a core", 5.0, "<=",
            "%d x %gs runs each, 4 probes, interval 0.05, refresh 0.25; dashboard %.1f%%, plain %.1f%% of a core"
            % (repeats, seconds, known(median([r["dashboard_cpu_s"] for r in runs])) / seconds * 100,
               known(median([r["plain_cpu_s"] for r in runs])) / seconds * 100))
    details["cpu_runs"] = runs
    details["cpu_seconds_each"] = seconds
    fig.details = details
    return fig
