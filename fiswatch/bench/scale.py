"""Figure 5: scale. 64 probes (16 endpoints x 4 backends) in one Runner against the local
server at the default interval (0.05 s). The target iteration rate of a probe is what the
same backend achieves alone at the same interval, measured in the same run just before
(baseline); the figure is the share of that rate the 64 probes achieve together. Frame
time meanwhile: `layout.render` of the live 64-probe View at 200x67 (the smallest height
that fits 64 columns at 200 wide), timed in the same process while the probes run.
"""
import time
from typing import Dict, List

from fiswatch.bench.common import BenchDb, Figure, median, percentile, truncate, wait_until

SPECS = ("mysql-connector", "pymysql", "mysql-connector:read_timeout=1", "pymysql:read_timeout=2")
ENDPOINTS = 16
INTERVAL = 0.05


def tables() -> List[str]:
    return ["scale%02d" % i for i in range(ENDPOINTS)]


def _rates(runner, seconds: float) -> Dict[str, float]:
    probes = runner.probes
    if not wait_until(lambda: all(p.snapshot.iterations >= 5 for p in probes), 60.0):
        stuck = [p.id for p in probes if p.snapshot.iterations < 5]
        raise RuntimeError("%d probes made no progress, e.g. %s: %s" % (
            len(stuck), stuck[0], next(p.snapshot.last_error for p in probes if p.id == stuck[0])))
    n0 = {p.id: p.snapshot.iterations for p in probes}
    t0 = time.perf_counter()
    time.sleep(seconds)
    t1 = time.perf_counter()
    return {p.id: (p.snapshot.iterations - n0[p.id]) / (t1 - t0) for p in probes}


def run(db: BenchDb, quick: bool) -> Figure:
    from fiswatch.backends.registry import parse_backend_spec
    from fiswatch.engine.runner import RunOptions, Runner
    from fiswatch.ui.layout import UiState, render

    fig = Figure(5, "Scale: 64 probes (16 endpoints x 4 backends) at interval 0.05 s")
    solo_s, scale_s = (1.5, 5.0) if quick else (5.0, 30.0)
    names = tables()
    truncate(db, names)
    specs = [parse_backend_spec(s) for s in SPECS]
    options = RunOptions(interval=INTERVAL, stall_after=2.0)
    solo: Dict[str, float] = {}
    for spec in specs:  # baseline: each backend alone, same interval
        runner = Runner([db.endpoint("solo", names[0])], [spec], options).start()
        try:
            solo[spec.label] = list(_rates(runner, solo_s).values())[0]
        finally:
            runner.stop()
    endpoints = [db.endpoint("db%02d" % i, names[i]) for i in range(ENDPOINTS)]
    runner = Runner(endpoints, specs, options)
    frame_ms: List[float] = []
    ui = UiState()
    runner.start()
    try:
        rates = _rates(runner, 1.0)  # warm-up, all probes running
        n0 = {p.id: p.snapshot.iterations for p in runner.probes}
        t0 = time.perf_counter()
        end = t0 + scale_s
        while time.perf_counter() < end:  # meanwhile: lay out the live view every 0.25 s
            view = runner.view
            f0 = time.perf_counter()
            render(view, 200, 67, ui, time.monotonic())
            frame_ms.append((time.perf_counter() - f0) * 1000)
            time.sleep(0.25)
        t1 = time.perf_counter()
        rates = {p.id: (p.snapshot.iterations - n0[p.id]) / (t1 - t0) for p in runner.probes}
        errors = sum(p.snapshot.errors for p in runner.probes)
    finally:
        runner.stop()
    by_backend: Dict[str, float] = {}
    achieved = target = 0.0
    for p in runner.probes:
        label = p.spec.label
        achieved += rates[p.id]
        target += solo[label]
        by_backend[label] = by_backend.get(label, 0.0) + rates[p.id] / ENDPOINTS
    share = achieved / target if target else None
    fig.add("share of target rate", share, "x", 0.9, ">=",
            "64 probes %.0f rounds/s in all vs %.0f/s if each ran as fast as alone" % (achieved, target))
    fig.add("slowest probe share", min(rates[p.id] / solo[p.spec.label] for p in runner.probes), "x",
            note="min over the 64 probes of rate / solo rate")
    fig.add("render 64 probes meanwhile (median)", median(frame_ms), "ms", 30.0, "<=",
            "layout of the live View at 200x67, %d frames while the probes ran" % len(frame_ms))
    fig.add("render 64 probes meanwhile (p95)", percentile(frame_ms, 95), "ms")
    fig.details = {"solo_rounds_per_s": {k: round(v, 2) for k, v in solo.items()},
                   "mean_rounds_per_s_per_probe_by_backend": {k: round(v, 2) for k, v in by_backend.items()},
                   "nominal_rate_per_probe": 1.0 / INTERVAL, "seconds": scale_s, "errors": errors,
                   "frame_ms": [round(x, 2) for x in frame_ms]}
    return fig
