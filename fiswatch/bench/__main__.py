"""`python -m fiswatch.bench [--quick] [--out FILE] [--memory-minutes N] [--only 1,2,...]`

Runs every figure of issue 6 against the local MariaDB (127.0.0.1:3306, root with an
empty password creates a `fiswatch_bench_<run>` database and a non-root user for the run) and a local lab,
prints a table of figures vs targets and writes JSON. A missed target never changes the
exit code (timings are not pass/fail on shared machines); a figure that cannot run does
(exit 1), so CI keeps the harness working with --quick.

The figures that run on their own (each starts what it needs) are reached by name:
`python -m fiswatch.bench NAME [options]`, NAME one of STANDALONE (`--help` after it lists its options).
"""
import argparse
import json
import os
import sys
import time
from typing import Any, Callable, Dict, List, Optional

from fiswatch.bench.common import ROOT_DIR, BenchError, Figure, drop_user, machine_info, setup_database

DEFAULT_OUT = os.path.join(ROOT_DIR, "bench", "results.json")
FIGURES = (1, 2, 3, 4, 5, 6, 7)
# name -> what it measures: `python -m fiswatch.bench NAME ...` runs fiswatch.bench.NAME's main()
STANDALONE = {"wire": "the lab's wire accounting: throughput and latency with vs without it (sysbench)",
              "record_memory": "report and verify on large records: peak memory and time",
              "tls": "TLS: the handshake's share of each client's recovery, CPU per reconnect",
              "maz_figure": "the Multi-AZ DB cluster: write gaps per profile, semi-sync's cost",
              "wrapper": "the AWS Advanced Python Wrapper's failover",
              "switchover_gap": "Blue/Green: each client's write gap through a switchover, the lab's phases vs plan"}


def parse_args(argv: List[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m fiswatch.bench", description=__doc__.split("\n\n")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="figures on their own: python -m fiswatch.bench NAME [--help]\n" + "\n".join(
                                    "  %-14s %s" % kv for kv in STANDALONE.items()))
    p.add_argument("--quick", action="store_true", help="short runs of every figure (< 2 min), for CI")
    p.add_argument("--out", help="JSON file to write (default: bench/results.json; with --quick: none unless given)")
    p.add_argument("--memory-minutes", type=float, default=10.0, metavar="N",
                   help="length of the full-rate memory run (default: %(default)s)")
    p.add_argument("--only", default="", metavar="1,2,...", help="run only these figures (3 and 7b share a lab)")
    args = p.parse_args(argv)
    try:
        args.figures = [int(x) for x in args.only.split(",") if x.strip()] or list(FIGURES)
    except ValueError:
        p.error("--only takes figure numbers such as 1,4,7")
    if any(f not in FIGURES for f in args.figures):
        p.error("--only: figures are numbered 1 to 7")
    if args.memory_minutes <= 0:
        p.error("--memory-minutes must be above 0")
    return args


def _timed(number: int, title: str, func: Callable[[], Any]) -> List[Figure]:
    t0 = time.monotonic()
    load = _loadavg()
    try:
        result = func()
        figs = result if isinstance(result, list) else [result]
    except Exception as exc:  # noqa: BLE001 - one line per broken figure, the others still run
        figs = [Figure(number, title, error="%s: %s" % (type(exc).__name__, exc))]
    for f in figs:
        f.seconds = time.monotonic() - t0
        f.details.setdefault("loadavg_at_start", load)
    return figs


def run_all(args: argparse.Namespace) -> Dict[str, Any]:
    from fiswatch.bench import labfigs, memory, overhead, scale, screen, stall, startup

    tables = ["test", overhead.TABLE, stall.TABLE] + scale.tables()
    db = setup_database(tables)
    q = args.quick
    figs: List[Figure] = []
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    load_start = _loadavg()
    wanted = set(args.figures)
    plan = [
        (1, "Probe overhead", lambda: overhead.run(db, q)),
        (2, "Stall detection latency", lambda: stall.run(db, q)),
        (3, "Recovery after lab failovers (and 7b)", lambda: labfigs.run(q, wanted)),
        (4, "Screen cost", lambda: screen.run(db, q)),
        (5, "Scale", lambda: scale.run(db, q)),
        (6, "Start-up", lambda: startup.run(db, q)),
        (7, "Memory", lambda: memory.run(db, q, args.memory_minutes)),
    ]
    try:
        for number, title, func in plan:
            if number in wanted or (number == 3 and 7 in wanted):  # 7b runs on figure 3's lab
                sys.stderr.write("figure %d: %s...\n" % (number, title))
                sys.stderr.flush()
                figs.extend(_timed(number, title, func))
        machine = machine_info(db)
        # a shared machine: the load at both ends says how much to trust absolute numbers
        machine["loadavg_at_start"], machine["loadavg_at_end"] = load_start, _loadavg()
    finally:
        drop_user(db)
    figs.sort(key=lambda f: f.number)
    return {"machine": machine, "quick": q, "memory_minutes": args.memory_minutes,
            "started": started, "ended": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "figures": [f.as_dict() for f in figs]}


def _loadavg() -> Any:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def table(results: Dict[str, Any]) -> List[str]:
    lines = ["%-3s %-40s %12s %-12s %-8s %s" % ("#", "metric", "value", "unit", "target", "met")]
    for fig in results["figures"]:
        if fig["error"]:
            lines.append("%-3s %-40s ERROR %s" % (fig["figure"], fig["title"][:40], fig["error"]))
            continue
        for m in fig["metrics"]:
            value = "-" if m["value"] is None else "%.4g" % m["value"]
            target = "%s %g" % (m["op"], m["target"]) if m["op"] else ""
            met = {True: "yes", False: "MISSED", None: ""}[m["met"]]
            lines.append("%-3s %-40s %12s %-12s %-8s %s" % (fig["figure"], m["name"][:40], value, m["unit"][:12],
                                                           target, met))
    return lines


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in STANDALONE:
        import importlib

        return int(importlib.import_module("fiswatch.bench." + argv[0]).main(argv[1:]) or 0)
    args = parse_args(argv)
    try:
        results = run_all(args)
    except BenchError as exc:
        sys.stderr.write("fiswatch.bench: %s\n" % exc)
        return 1
    except KeyboardInterrupt:
        return 130
    m = results["machine"]
    print("machine: %s x %s, %s GiB, Python %s, %s, MariaDB %s; load %s at start, %s at end" % (
        m["nproc"], m["cpu"], m["memory_gib"], m["python"],
        ", ".join("%s %s" % kv for kv in m["drivers"].items()), m.get("server"), m.get("loadavg_at_start"),
        m.get("loadavg_at_end")))
    print("\n".join(table(results)))
    out = args.out or (None if args.quick else DEFAULT_OUT)
    if out:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out, "w") as fh:
            json.dump(results, fh, indent=1, sort_keys=False)
            fh.write("\n")
        print("written: %s" % out)
    broken = [f["figure"] for f in results["figures"] if f["error"]]
    if broken:
        sys.stderr.write("fiswatch.bench: figures %s could not run (see ERROR lines)\n" % broken)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
