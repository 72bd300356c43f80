"""Each client's longest write gap through a lab Blue/Green switchover, and the lab's own phases (issue 23, Speed).

Through `repeats` switchovers of a `lab up --blue-green` lab per profile (fast, and the AWS-measured
timeline), fresh clients write to the Aurora cluster name side by side each time: PyMySQL,
mysql-connector (no read timeout, its default) and, where it runs (Python >= 3.10), the AWS Advanced
Python Wrapper with its `bg` plugin (`plugins=bg+failover_v2`) and without (`failover_v2`). Per
switchover and client: the longest gap between acknowledged writes that overlaps the outage
(IN_PROGRESS -> POST_PROCESSING); a client with no write after POST_PROCESSING by the end of the
window (switchover done + RECOVER s) never recovered: counted as such, never as a number. Between
switchovers green is made again on the same servers (lab/bg_recreate.py).

The lab's phases: each phase's measured duration (between the emitted steps) over the profile's planned
one; the target is within 10 %.

Run alone: `python -m fiswatch.bench switchover_gap [--repeats N] [--profile fast|aws|both] [--quick]`
(starts and removes its own lab).
"""
import argparse
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from fiswatch.bench.common import Figure, median
from fiswatch.bench.own_lab import own_lab, print_metrics
from fiswatch.bench.recovery_figure import Client, Writer, longest_gap, probe_client, spread

SETTLE = 5.0  # seconds of writing before each switchover (the wrapper reads the topology at connect)
RECOVER = 12.0  # seconds after the switchover is done (its table emptied) for every client to write again
TARGET = "aurora"
PHASE_TOLERANCE = 10.0  # percent
# (step, the profile's field for its planned offset); promote has no planned time (right after IN_PROGRESS)
STEPS: Tuple[Tuple[str, str], ...] = (
    ("SWITCHOVER_INITIATED", ""), ("SWITCHOVER_IN_PROGRESS", "in_progress_at"),
    ("SWITCHOVER_IN_POST_PROCESSING", "post_at"), ("topology-renamed", "renamed_at"), ("blue-dns", "blue_dns_at"),
    ("green-dns-removed", "green_gone_at"), ("SWITCHOVER_COMPLETED", "completed_at"), ("done", "done"))
PLAIN_CLIENTS: List[Client] = [probe_client("pymysql", "PyMySQL"),
                               probe_client("mysql-connector", "mysql-connector")]


def default_clients() -> List[Client]:
    from fiswatch.bench.wrapper import wrapper_available

    try:
        wrapper = wrapper_available()
    except Exception:  # noqa: BLE001 - not installed: the plain drivers only
        wrapper = False
    return PLAIN_CLIENTS + ([probe_client("aws-wrapper:plugins=bg+failover_v2", "wrapper with bg"),
                             probe_client("aws-wrapper", "wrapper without bg")] if wrapper else [])


def planned(plan: Any, step: str, field: str) -> float:
    if not field:
        return 0.0
    return float(plan.completed_at + plan.empty_after if field == "done" else getattr(plan, field))


def phase_rows(times: Dict[str, float], plan: Any) -> List[Dict[str, Any]]:
    """Each phase (step to next step): measured and planned seconds."""
    rows = []
    for (a, fa), (b, fb) in zip(STEPS, STEPS[1:]):
        if a in times and b in times:
            rows.append({"phase": "%s -> %s" % (a, b), "measured_s": round(times[b] - times[a], 3),
                         "planned_s": round(planned(plan, b, fb) - planned(plan, a, fa), 3)})
    return rows


def switchover_process(lab_dir: str, profile: str) -> List[Dict[str, Any]]:
    """`fiswatch lab switchover --json` in its own process, as a user runs it (in this one, the clients'
    busy threads would hold the GIL against the lab's steps); its `lab` events."""
    import json
    import os
    import subprocess

    done = subprocess.run([sys.executable, "-m", "fiswatch", "lab", "switchover", "--dir", lab_dir, "--profile",
                           profile, "--json"], capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, AWS_EC2_METADATA_DISABLED="true"))
    if done.returncode != 0:
        raise RuntimeError("lab switchover exited %d: %s" % (done.returncode, done.stderr.strip()[-300:]))
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def one_switchover(lab_dir: str, info: Any, profile: str, clients: Sequence[Client]) -> Dict[str, Any]:
    from fiswatch.lab.switchover import PROFILES

    endpoint, nameserver = info.endpoint(TARGET), tuple(info.nameserver)
    running: Dict[str, Writer] = {}
    try:
        for client in clients:
            running[client.name] = client.start(endpoint, nameserver)
        time.sleep(SETTLE)
        events = switchover_process(lab_dir, profile)
        time.sleep(RECOVER)
        window_end = time.time()
    finally:
        for writer in running.values():
            try:
                writer.stop()
            except Exception:  # noqa: BLE001 - a writer that cannot stop must not hide the figure
                pass
    times = {e["step"]: float(e["ts"]) for e in reversed(events)}  # ts: when the step began
    window = {k: next(float(e[k]) for e in events if k in e) for k in ("outage_start", "outage_end")}
    start, end = window["outage_start"], window["outage_end"]
    row: Dict[str, Any] = {"outage_s": round(end - start, 3), "gaps_s": {}, "held_s": {},
                           "phases": phase_rows(times, PROFILES[profile]),
                           "offsets_s": {k: round(v - times["SWITCHOVER_INITIATED"], 3) for k, v in times.items()}}
    for name, writer in running.items():
        writes = sorted(writer.writes)
        if any(t > end for t in writes):
            gap = longest_gap(writes, start, end)
            row["gaps_s"][name] = None if gap is None else round(gap, 3)
        else:  # never wrote again: how long it had been held when the window closed
            before = [t for t in writes if t <= start]
            row["gaps_s"][name] = None
            row["held_s"][name] = round(window_end - (before[-1] if before else start), 3)
    return row


def profile_rows(profile: str, repeats: int, clients: Sequence[Client]) -> List[Dict[str, Any]]:
    from fiswatch.lab.bg_recreate import recreate_green

    rows: List[Dict[str, Any]] = []
    with own_lab("switchover", blue_green=True) as (lab_dir, info):
        for i in range(repeats):
            if i:
                recreate_green(lab_dir)
            rows.append(one_switchover(lab_dir, info, profile, clients))
            sys.stderr.write("switchover_gap: %s %d/%d: %s\n" % (profile, i + 1, repeats, rows[-1]["gaps_s"]))
    return rows


def add_profile(fig: Figure, profile: str, rows: List[Dict[str, Any]], clients: Sequence[Client]) -> None:
    outages = [r["outage_s"] for r in rows]
    for c in clients:
        gaps = [r["gaps_s"][c.name] for r in rows]
        held = [r["held_s"][c.name] for r in rows if c.name in r["held_s"]]
        lost = " never wrote again in %d (held %s s when the window closed)" % (
            len(held), ", ".join("%.1f" % h for h in held)) if held else ""
        fig.add("%s: %s gap" % (profile, c.name), median(gaps), "s",
                note="median of %d of %d switchovers (outage median %.2f s);%s spread %s"
                % (len(gaps) - len(held), len(rows), median(outages) or 0.0, lost, spread(gaps)))
    names = [p["phase"] for p in rows[0]["phases"]] if rows else []
    for name in names:
        pairs = [(p["measured_s"], p["planned_s"]) for r in rows for p in r["phases"] if p["phase"] == name]
        ratio = median([m / p for m, p in pairs if p > 0])
        dev = None if ratio is None else abs(ratio - 1.0) * 100.0
        fig.add("%s phase %s" % (profile, name), dev, "%", PHASE_TOLERANCE, "<=",
                note="|measured/planned - 1|: ratio %s (measured median %.3f s, planned %.3f s)"
                % ("-" if ratio is None else "%.3f" % ratio, median([m for m, _ in pairs]) or 0.0, pairs[0][1]))


def run(profiles: Sequence[str], repeats: Dict[str, int], clients: Optional[Sequence[Client]] = None) -> Figure:
    clients = list(clients or default_clients())
    fig = Figure(12, "Write gap through a lab Blue/Green switchover, per client, and the lab's phases vs plan")
    details: Dict[str, Any] = {"clients": [c.name for c in clients]}
    for profile in profiles:
        rows = profile_rows(profile, repeats[profile], clients)
        add_profile(fig, profile, rows, clients)
        details[profile] = rows
    fig.details = details
    return fig


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fiswatch.bench.switchover_gap", description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5, help="switchovers per profile (default: %(default)s)")
    p.add_argument("--profile", default="both", choices=("fast", "aws", "both"), help="default: %(default)s")
    p.add_argument("--quick", action="store_true", help="2 switchovers on the AWS timeline (each ~2 min) instead")
    p.add_argument("--out", help="write the figure as JSON here")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error("--repeats must be at least 1")
    profiles = ("fast", "aws") if args.profile == "both" else (args.profile,)
    fig = run(profiles, {"fast": args.repeats, "aws": min(args.repeats, 2) if args.quick else args.repeats})
    print_metrics(fig, args.out, width=66)
    return 1 if fig.error else 0


if __name__ == "__main__":
    sys.exit(main())
