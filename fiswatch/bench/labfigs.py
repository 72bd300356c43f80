"""Figures 3 and 7b, on one real local lab (`fiswatch.lab.api`).

3: fiswatch.bench.recovery_figure (the PyMySQL probe beside the workshop's loop, Aurora and RDS).
7b: a `fiswatch watch --lab --plain` child through 20 failovers: its threads and file
   descriptors sampled after each one must stay bounded.
"""
import random
import shutil
import subprocess
import tempfile
import time
from typing import Dict, List

from fiswatch.bench import recovery_figure as recovery
from fiswatch.bench.common import Figure, child_env, fiswatch_argv


def bounded_figure(lab_dir: str, failovers: int, profile: str = "fast") -> Figure:
    """Threads and fds of a `watch --lab` child through `failovers` Aurora failovers (`profile`: their timing;
    the point is the reconnects they cause, not the timing)."""
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
            failover(lab_dir, "aurora", profile=profile)
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


def run(quick: bool, figures=(3, 7)) -> List[Figure]:
    """Figure 3 and/or 7b on one lab."""
    from fiswatch.lab.api import LabNotRunning, lab_down, lab_up

    lab_dir = tempfile.mkdtemp(prefix="fiswatch-bench-lab-")
    base = "127.%d.%d" % (random.randint(20, 250), random.randint(1, 250))
    info = lab_up(lab_dir, base=base, port=3306, dns_port=random.randint(20000, 30000))
    try:
        from fiswatch.bench.wrapper import wrapper_available, wrapper_figure

        figs = []
        if 3 in figures:
            figs.append(recovery.figure(lab_dir, info, 1 if quick else 7))
            if wrapper_available():  # Python >= 3.10 with the aws-wrapper extra
                figs.append(wrapper_figure(lab_dir, info, 1 if quick else 3, "fast" if quick else "realistic"))
        if 7 in figures:
            # --quick (CI): 3 failovers of the quick profile (DNS at 2 s, not 10 s): ~25 s less
            figs.append(bounded_figure(lab_dir, 3 if quick else 20, "quick" if quick else "fast"))
    finally:
        try:
            lab_down(lab_dir)
        except LabNotRunning:
            pass
        shutil.rmtree(lab_dir, ignore_errors=True)  # ~400 MB of datadirs
    return figs
