"""Figure 3, wrapper part: the AWS Advanced Python Wrapper's write gap beside PyMySQL's.

Both probes (fiswatch's own, through the Runner) write to the lab's Aurora cluster through
the same failovers (profile 'realistic' by default: promotion 8 s after the fence, the
cluster name's DNS 15 s after it). Per failover: each probe's longest gap between
acknowledged writes that overlaps the outage. Targets (issue 11):
  wrapper gap <= (promotion - fence) + socket_timeout + 1 s
  wrapper gap at least 5 s shorter than PyMySQL's
The wrapper needs Python >= 3.10 and the `aws-wrapper` extra; without it the figure says so.

Run alone: `python -m fiswatch.bench.wrapper [--repeats N] [--profile fast|realistic]`
(starts and removes its own lab), or from figure 3 with a running lab.
"""
import argparse
import json
import sys
import threading
import time
from typing import Any, Dict, List, Optional

from fiswatch import events as E
from fiswatch.bench.common import Figure, median
from fiswatch.bench.own_lab import own_lab
from fiswatch.bench.recovery_figure import longest_gap

PROBES = ("pymysql", "aws-wrapper")


def wrapper_available() -> bool:
    from fiswatch.backends.aws_wrapper import AwsWrapperBackend

    return AwsWrapperBackend().info().available


def wrapper_figure(lab_dir: str, info: Any, repeats: int, profile: str = "realistic") -> Figure:
    from fiswatch.backends.aws_wrapper import AwsWrapperBackend
    from fiswatch.lab.api import failover
    from fiswatch.model import BackendSpec
    from fiswatch.engine.runner import Output, RunOptions, Runner

    fig = Figure(3, "Recovery after a lab Aurora failover: aws-wrapper vs PyMySQL (%s)" % profile)
    backend = AwsWrapperBackend()
    available = backend.info()
    if not available.available:
        fig.error = "aws-wrapper cannot run here: %s" % available.reason
        return fig
    socket_timeout = backend.settings["socket_timeout"] or 0.0
    aurora = next(e for e in info.endpoints if e.name == "aurora")
    writes: Dict[str, List[float]] = {name: [] for name in PROBES}
    failovers: List[float] = []
    lock = threading.Lock()

    def sink(view: Any, events: List[Any]) -> None:
        with lock:
            for e in events:
                backend_name = str(e.get("probe") or "").split("/", 1)[-1]
                if e.event == E.WRITE and backend_name in writes:
                    writes[backend_name].append(e.ts)
                elif e.event == E.FAILOVER:
                    failovers.append(e.ts)

    runner = Runner([aurora], [BackendSpec(name) for name in PROBES],
                    RunOptions(interval=0.05, stall_after=2.0, nameserver=tuple(info.nameserver)),
                    outputs=[Output(sink, "bench")])
    runner.start()
    rows = []
    try:
        for _ in range(repeats):
            time.sleep(4.0)  # both probes writing steadily again
            steps: List[Any] = []
            failover(lab_dir, "aurora", emit=steps.append, profile=profile)
            time.sleep(5.0)  # both recovered and writing
            at = {e.get("step"): e.ts for e in reversed(steps)}
            fence = next(e.get("outage_start") for e in steps if e.get("step") == "start")
            end = next(e.get("outage_end") for e in steps if e.get("step") == "done")
            with lock:
                gaps = {name: longest_gap(writes[name], fence, end) for name in PROBES}
            rows.append({"promote_after_fence_s": round(at["promote"] - fence, 3),
                         "dns_after_fence_s": round(at["dns_flip"] - fence, 3),
                         "pymysql_gap_s": _r(gaps["pymysql"]), "wrapper_gap_s": _r(gaps["aws-wrapper"])})
    finally:
        runner.stop()
    wrapper_gaps = [r["wrapper_gap_s"] for r in rows]
    pymysql_gaps = [r["pymysql_gap_s"] for r in rows]
    promote = median([r["promote_after_fence_s"] for r in rows])
    limit = (promote or 0.0) + socket_timeout + 1.0
    worst_excess = max((w - (r["promote_after_fence_s"] + socket_timeout + 1.0) for r, w in zip(rows, wrapper_gaps)
                        if w is not None), default=None)
    fig.add("aws-wrapper gap", median(wrapper_gaps), "s", round(limit, 2), "<=",
            "median of %d %s failovers; (promotion - fence) + socket_timeout %gs + 1 s" % (repeats, profile,
                                                                                          socket_timeout))
    fig.add("aws-wrapper gap - its limit, worst", worst_excess, "s", 0.0, "<=", "every failover within the target")
    fig.add("PyMySQL gap", median(pymysql_gaps), "s", note="same failovers; recovers at the DNS change")
    shorter = [p - w for p, w in zip(pymysql_gaps, wrapper_gaps) if p is not None and w is not None]
    fig.add("PyMySQL gap - aws-wrapper gap, least", min(shorter) if shorter else None, "s", 5.0, ">=",
            "the wrapper is at least 5 s faster in every failover")
    fig.details = {"failovers": rows, "client_failovers_seen": len(failovers), "profile": profile}
    return fig


def _r(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(value, 3)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fiswatch.bench.wrapper", description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3, help="failovers (default: %(default)s)")
    p.add_argument("--profile", default="realistic", choices=("fast", "realistic"), help="lab failover profile")
    args = p.parse_args(argv)
    with own_lab("wrapper") as (lab_dir, info):  # a free loopback prefix, down and removed at the end
        fig = wrapper_figure(lab_dir, info, args.repeats, args.profile)
    print(json.dumps(fig.as_dict(), indent=1))
    return 1 if fig.error else 0


if __name__ == "__main__":
    sys.exit(main())
