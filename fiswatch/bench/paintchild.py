"""Child of figure 4: time `layout.render` + `shell.paint` on the real curses terminal it runs in.

    python -m fiswatch.bench.paintchild PROBES FRAMES OUT.json

Builds a View of PROBES probes (PROBES/4 endpoints x 4 backends) in a few variants (rows,
counters and sparklines change from frame to frame, so curses really repaints), paints
FRAMES frames and writes per-frame milliseconds to OUT.json. Baseline, in the same
process: a bare curses paint of the same amount of plain text (no layout).
"""
import json
import sys
import time
from typing import Any, Dict, List

from fiswatch import events as E
from fiswatch.model import BackendInfo, EndpointView, Op, ProbeView, Resolution, Snapshot, State, View

BACKENDS = (
    BackendInfo("mysql-connector", "mysql-connector-python", "9.4.0", (("connect", 1.0), ("read", None),
                                                                      ("write", None)), notes="C extension"),
    BackendInfo("pymysql", "PyMySQL", "1.1.1", (("connect", 1.0), ("read", 1.0), ("write", 1.0)), notes="pure Python"),
    BackendInfo("mysql-connector", "mysql-connector-python", "9.4.0", (("connect", 1.0), ("read", 1.0),
                                                                      ("write", None)), notes="C extension"),
    BackendInfo("pymysql", "PyMySQL", "1.1.1", (("connect", 1.0), ("read", 2.0), ("write", 1.0)), notes="pure Python"),
)
LABELS = ("mysql-connector", "pymysql", "mysql-connector:read_timeout=1", "pymysql:read_timeout=2")


def make_view(probes: int, variant: int, now: float) -> View:
    endpoints = max(1, probes // len(LABELS))
    views = []
    eps = []
    for e in range(endpoints):
        name = "db%02d" % e
        eps.append(EndpointView(name=name, host="%s.cluster-bench.local" % name,
                                resolution=Resolution("%s.cluster-bench.local" % name, ("127.0.10.%d" % (e + 1),),
                                                      ttl=5)))
        for b, label in enumerate(LABELS):
            k = e * len(LABELS) + b
            stalled = (k % 7 == 3)
            first = 1000 + 37 * k + variant * 3
            rows = tuple((first - i, (first - i) * 7919 % 32768) for i in range(10))
            snap = Snapshot(probe="%s/%s" % (name, label), endpoint=name, backend=label,
                            state=State.OK, op=Op.INSERT if stalled else None,
                            op_started=now - 3.5 - variant if stalled else None, rows=rows,
                            address="127.0.10.%d" % (e + 1), iterations=first, errors=k % 3,
                            latency=(("INSERT", 0.002), ("COMMIT", 0.001), ("SELECT", 0.001)))
            history = tuple((17 + (i * 5 + variant + k) % 4) for i in range(60))
            views.append(ProbeView(snapshot=snap, info=BACKENDS[b], state=State.STALLED if stalled else State.OK,
                                   stalled_for=3.5 + variant if stalled else 0.0, ops_per_s=18.0 + variant % 3,
                                   history=history, longest_stall=3.5 if stalled else 0.0))
    events = tuple(E.state("db00/pymysql", "db00", "pymysql", "OK" if i % 2 else "ERROR", ts=1700000000.0 + i,
                           address="127.0.10.1") for i in range(20 + variant))
    return View(ts=1700000000.0 + variant, probes=tuple(views), endpoints=tuple(eps), events=events)


def measure(stdscr: Any, curses: Any, probes: int, frames: int) -> Dict[str, List[float]]:
    from fiswatch.ui.layout import UiState, render
    from fiswatch.ui.shell import make_palette, paint

    palette = make_palette(curses, True)
    height, width = stdscr.getmaxyx()
    ui = UiState()
    now = time.monotonic()
    variants = [make_view(probes, v, now) for v in range(8)]
    from fiswatch.ui.layout import size_problem

    out: Dict[str, Any] = {"frame_ms": [], "render_ms": [], "bare_ms": [], "size": [width, height],
                           "too_small_needs": size_problem(probes, width, height)}
    for i in range(frames + 5):
        view = variants[i % len(variants)]
        t0 = time.perf_counter()
        lines = render(view, width, height, ui, time.monotonic())
        t1 = time.perf_counter()
        paint(curses, stdscr, lines, palette, False)
        t2 = time.perf_counter()
        # baseline: the same amount of text, no layout, one addnstr per line
        texts = ["".join(t for t, _ in line.segments) for line in lines]
        t3 = time.perf_counter()
        stdscr.erase()
        for y, text in enumerate(texts[:height]):
            try:
                stdscr.addnstr(y, 0, text, width)
            except curses.error:
                pass
        stdscr.noutrefresh()
        curses.doupdate()
        t4 = time.perf_counter()
        if i >= 5:  # warm-up frames not counted
            out["frame_ms"].append((t2 - t0) * 1000)
            out["render_ms"].append((t1 - t0) * 1000)
            out["bare_ms"].append((t4 - t3) * 1000)
    return out


def main() -> None:
    import curses

    probes, frames, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    result: Dict[str, Any] = {}

    def body(stdscr: Any) -> None:
        result.update(measure(stdscr, curses, probes, frames))

    curses.wrapper(body)
    with open(path, "w") as fh:
        json.dump(result, fh)


if __name__ == "__main__":
    main()
