"""Each client's write gap through a writer crash without failover (issue 22, Speed).

Through `repeats` crashes of the lab's Aurora writer (`lab crash aurora`: sessions reset, connects
refused for `down_for` seconds, the same instance back at the same address, no DNS change), every
client in CRASH_CLIENTS (plus the aws-wrapper probe where it runs) and the workshop's reconnect loop write to the cluster name side by side
(recovery_figure.py's writers). Per crash and client: the longest gap between acknowledged writes that
overlaps the outage (`start.outage_start` -> `done.outage_end`). Reported: the median gap per client
and its median excess over the outage, with the spread.

Run alone: `python -m fiswatch.bench.crash_gap [--repeats N] [--down SECONDS]` (starts and removes
its own lab).
"""
import argparse
import json
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

from fiswatch.bench.common import Figure, median
from fiswatch.bench.own_lab import own_lab
from fiswatch.bench.recovery_figure import BASELINE, RECOVER, SETTLE, Client, Writer, longest_gap, probe_client, \
    spread

CRASH_CLIENTS: List[Client] = [probe_client("pymysql", "PyMySQL probe"),
                               probe_client("mysql-connector", "mysql-connector probe")]


def default_clients() -> List[Client]:
    """CRASH_CLIENTS, and the AWS Advanced Python Wrapper's probe where it can run (Python >= 3.10, its extra)."""
    from fiswatch.bench.wrapper import wrapper_available

    try:
        extra = [probe_client("aws-wrapper", "aws-wrapper probe")] if wrapper_available() else []
    except Exception:  # noqa: BLE001
        extra = []
    return CRASH_CLIENTS + extra


def crash_figure(lab_dir: str, info: Any, repeats: int, down_for: float = 3.0,
                 clients: Sequence[Client] = ()) -> Figure:
    from fiswatch.lab.crash import run_crash

    clients = [BASELINE] + list(clients or default_clients())
    fig = Figure(3, "Write gap through a lab Aurora writer crash without failover (down %gs)" % down_for)
    endpoint, nameserver = info.endpoint("aurora"), tuple(info.nameserver)
    running: Dict[str, Writer] = {}
    rows: List[Dict[str, Any]] = []
    try:
        for client in clients:
            running[client.name] = client.start(endpoint, nameserver)
        for _ in range(repeats):
            time.sleep(SETTLE)
            window = run_crash(lab_dir, "aurora", down_for=down_for)
            time.sleep(RECOVER)
            start, end = window["outage_start"], window["outage_end"]
            gaps = {c.name: longest_gap(list(running[c.name].writes), start, end) for c in clients}
            rows.append({"outage_s": round(end - start, 3),
                         "gaps_s": {n: None if g is None else round(g, 3) for n, g in gaps.items()}})
    finally:
        for writer in running.values():
            try:
                writer.stop()
            except Exception:  # noqa: BLE001
                pass
    outages = [r["outage_s"] for r in rows]
    for client in clients:
        client_gaps = [r["gaps_s"][client.name] for r in rows]
        excess = [None if g is None else g - o for g, o in zip(client_gaps, outages)]
        fig.add("crash: %s gap" % client.name, median([g for g in client_gaps if g is not None]), "s",
                note="median of %d crashes (outage median %.2f s); spread %s" % (len(rows), median(outages) or 0.0,
                                                                                   spread(client_gaps)))
        fig.add("crash: %s gap - outage" % client.name, median([e for e in excess if e is not None]), "s",
                note="spread %s" % spread(excess))
    fig.details = {"crashes": rows, "clients": [c.name for c in clients], "down_s": down_for}
    return fig


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fiswatch.bench.crash_gap", description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5, help="crashes (default: %(default)s)")
    p.add_argument("--down", type=float, default=3.0, help="seconds the writer stays down (default: %(default)s)")
    args = p.parse_args(argv)
    with own_lab("crash") as (lab_dir, info):
        fig = crash_figure(lab_dir, info, args.repeats, args.down)
    print(json.dumps(fig.as_dict(), indent=1))
    return 1 if fig.error else 0


if __name__ == "__main__":
    sys.exit(main())
