"""Each client's write gap through zero-downtime patching of the lab's Aurora writer (issue 22, Speed).

Through `repeats` patches (`lab patch aurora` on a lab with its RDS Proxy: the writer's engine restarts in
place, no DNS change, the proxy keeps its sessions), the workshop's reconnect loop and the fiswatch probes
write by the cluster name and via the proxy side by side (recovery_figure.py's writers, as
rdsproxy_figure.py runs them). Per patch and client: the longest gap between acknowledged writes that
overlaps the outage (`start.outage_start` -> `done.outage_end`). Reported: the median gap per client and
way, with the spread.

Run alone: `python -m fiswatch.bench.patch_gap [--repeats N]` (starts and removes its own lab).
"""
import argparse
import sys
import time
from typing import Any, Dict, List, Optional

from fiswatch.bench.common import Figure, median
from fiswatch.bench.own_lab import own_lab, print_metrics
from fiswatch.bench.rdsproxy_figure import CLIENTS, ENDPOINTS
from fiswatch.bench.recovery_figure import RECOVER, SETTLE, longest_gap, spread


def patch_rows(lab_dir: str, info: Any, repeats: int, clients: Any = CLIENTS) -> List[Dict[str, Any]]:
    from fiswatch.lab.patch_run import run_patch_outage

    nameserver = tuple(info.nameserver)
    running = {(ep, c.name): c.start(info.endpoint(ep), nameserver) for ep in ENDPOINTS for c in clients}
    rows: List[Dict[str, Any]] = []
    try:
        for _ in range(repeats):
            time.sleep(SETTLE)
            window = run_patch_outage(lab_dir, "aurora", reason="the patch benchmark")
            time.sleep(RECOVER)
            start, end = window["outage_start"], window["outage_end"]
            row: Dict[str, Any] = {"outage_s": round(end - start, 3), "sessions": window["sessions"], "gaps_s": {}}
            for (ep, name), writer in running.items():
                gap = longest_gap(list(writer.writes), start, end)
                row["gaps_s"]["%s %s" % (ep, name)] = None if gap is None else round(gap, 3)
            rows.append(row)
    finally:
        for writer in running.values():
            try:
                writer.stop()
            except Exception:  # noqa: BLE001 - a writer that cannot stop must not hide the figure
                pass
    return rows


def patch_figure(lab_dir: str, info: Any, repeats: int, clients: Any = CLIENTS) -> Figure:
    fig = Figure(11, "Write gap through zero-downtime patching of the lab's Aurora writer, by name and via the proxy")
    rows = patch_rows(lab_dir, info, repeats, clients)
    outages = [r["outage_s"] for r in rows]
    for c in clients:
        for ep, way in (("aurora", "by the cluster name"), ("aurora-proxy", "via the RDS Proxy")):
            gaps = [r["gaps_s"]["%s %s" % (ep, c.name)] for r in rows]
            fig.add("patch: %s gap, %s" % (c.name, way), median([g for g in gaps if g is not None]), "s",
                    note="median of %d patches (outage median %.2f s); spread %s"
                    % (len(rows), median(outages) or 0.0, spread(gaps)))
    fig.details = {"patches": rows, "clients": [c.name for c in clients]}
    return fig


def run(repeats: int) -> Figure:
    with own_lab("patch", rds_proxy=True) as (lab_dir, info):
        return patch_figure(lab_dir, info, repeats)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fiswatch.bench.patch_gap", description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5, help="patches (default: %(default)s)")
    p.add_argument("--out", help="write the figure as JSON here")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error("--repeats must be at least 1")
    fig = run(args.repeats)
    print_metrics(fig, args.out, width=58)
    return 1 if fig.error else 0


if __name__ == "__main__":
    sys.exit(main())
