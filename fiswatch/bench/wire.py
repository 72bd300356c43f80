"""`python -m fiswatch.bench.wire [--rounds N] [--seconds S] [--threads T] [--memory-minutes M] [--out FILE]`

The cost of the lab's wire accounting (lab/wire/), as a figure: sysbench `oltp_insert` against
the machine's MariaDB (127.0.0.1:3306, root, empty password) through two lab proxies in this
process, one with the accounting and one without, alternating (A B, B A, ...) in the same run,
and straight to the server (direct) in each round too, for what the proxy itself costs.
Targets: throughput ratio (with / without) >= 0.95; added p50 latency <= 50 us per statement.
On a shared machine one round's load differs from the next: the ratio is given both as the ratio
of the mean throughputs and as the median of the rounds' own ratios (each pair run back to back),
and, what the load moves least, as the proxies' own CPU per statement: each proxy runs on its own
loop thread, whose CPU time (CLOCK_THREAD_CPUTIME_ID) is read before and after each sysbench run;
"cpu ratio" = plain / accounted is the throughput ratio a proxy bound by its CPU would see.
Then the accounting proxy alone at full rate for M minutes: this process's RSS and the ledger's
insert ranges sampled every 10 s (flat = bounded state). Timings are figures, not pass/fail:
the exit code is 1 only when the figure cannot run (no sysbench, no server).
"""
import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

DB = "fiswatch_bench_wire"
TARGET_RATIO, TARGET_P50_US = 0.95, 50.0


def _sysbench(port: int, seconds: float, threads: int, command: str) -> Tuple[float, float, int]:
    argv = ["sysbench", "oltp_insert", "--db-driver=mysql", "--mysql-host=127.0.0.1", "--mysql-port=%d" % port,
            "--mysql-user=root", "--mysql-db=" + DB, "--tables=1", "--table-size=1000", "--threads=%d" % threads,
            "--time=%d" % max(1, int(seconds)), "--percentile=50", "--mysql-ssl=off", command]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120)
    if out.returncode != 0:
        raise RuntimeError("sysbench %s failed: %s" % (command, (out.stderr or out.stdout).strip()[-300:]))
    if command != "run":
        return 0.0, 0.0, 0
    tps = re.search(r"queries:\s+(\d+)\s+\(([\d.]+) per sec", out.stdout)
    p50 = re.search(r"50th percentile:\s+([\d.]+)", out.stdout)
    if not tps or not p50:
        raise RuntimeError("cannot read sysbench's output: %s" % out.stdout[-300:])
    return float(tps.group(2)), float(p50.group(1)) * 1000.0, int(tps.group(1))  # statements/s, us, statements


def cpu_per_statement(n: int = 20000) -> float:
    """Microseconds of this process's CPU the accounting spends on one INSERT and its OK (pure, in-process)."""
    from fiswatch.lab.wire import framing as F
    from fiswatch.lab.wire.accounting import Ledger

    ledger = Ledger(resolve_owner=False)
    session = ledger.session_factory("bench", endpoint="bench")(("127.0.0.1", 1))
    session.from_server(F.packet_bytes(0, b"\x0a10.11\x00" + b"\x01\x00\x00\x00" + b"a" * 8 + b"\x00\xff\xf7"
                                       + b"\x08\x02\x00\xff\x81\x15" + b"\x00" * 10))
    caps = F.CLIENT_PROTOCOL_41 | F.CLIENT_SECURE_CONNECTION
    session.from_client(F.packet_bytes(1, caps.to_bytes(4, "little") + b"\x00" * 28 + b"u\x00\x00"))
    session.from_server(F.packet_bytes(2, b"\x00\x00\x00\x02\x00\x00\x00"))
    query = F.packet_bytes(0, b"\x03INSERT INTO sbtest1 (id, k, c, pad) VALUES (0, 5012, '" + b"7" * 119 + b"', '"
                           + b"8" * 59 + b"')")
    oks = [F.packet_bytes(1, b"\x00\x01" + bytes((0xfc,)) + (i % 60000 + 1).to_bytes(2, "little") + b"\x02\x00\x00\x00")
           for i in range(256)]
    t0 = time.process_time()
    for i in range(n):
        session.from_client(query)
        session.from_server(oks[i % 256])
    return (time.process_time() - t0) / n * 1e6


def _rss_kib() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def run(rounds: int, seconds: float, threads: int, memory_minutes: float) -> Dict[str, Any]:
    import pymysql

    from fiswatch.lab.loop import ProxyLoop
    from fiswatch.lab.proxy import FaultProxy
    from fiswatch.lab.wire.accounting import Ledger

    if shutil.which("sysbench") is None:
        raise RuntimeError("sysbench is not installed: sudo apt-get install sysbench (scripts/setup.sh does)")
    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)
    with conn.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS " + DB)
        cur.execute("CREATE DATABASE " + DB)
    ledger = Ledger(resolve_owner=False)
    plain_loop = ProxyLoop("fiswatch-bench-plain").start()
    plain = FaultProxy("127.0.0.1", 0, "127.0.0.1", 3306, name="bench-plain", loop=plain_loop).start()
    wire_loop = ProxyLoop("fiswatch-bench-wire").start()  # the ledger is read on the loop its sessions run on
    accounted = FaultProxy("127.0.0.1", 0, "127.0.0.1", 3306, name="bench-wire", loop=wire_loop,
                           session=ledger.session_factory("bench", endpoint="bench")).start()
    try:
        _sysbench(plain.address[1], 10, 1, "prepare")
        samples: Dict[str, List[Tuple[float, float]]] = {"plain": [], "accounted": [], "direct": []}
        cpu: Dict[str, List[float]] = {"plain": [], "accounted": []}  # the proxy's loop thread, us per statement
        loops = {"plain": plain_loop, "accounted": wire_loop}
        for r in range(rounds):
            order = [("plain", plain.address[1]), ("accounted", accounted.address[1])]
            for name, port in (order if r % 2 == 0 else order[::-1]) + [("direct", 3306)]:
                before = loops[name].call(time.thread_time) if name in loops else 0.0
                tps_now, p50_now, statements = _sysbench(port, seconds, threads, "run")
                samples[name].append((tps_now, p50_now))
                if name in loops and statements:
                    cpu[name].append((loops[name].call(time.thread_time) - before) / statements * 1e6)
        tps = {k: sum(t for t, _ in v) / len(v) for k, v in samples.items()}
        p50 = {k: statistics.median(p for _, p in v) for k, v in samples.items()}
        ratio = tps["accounted"] / tps["plain"] if tps["plain"] else 0.0
        cpu_us = {k: round(statistics.median(v), 1) if v else None for k, v in cpu.items()}
        paired = statistics.median(a[0] / b[0] for a, b in zip(samples["accounted"], samples["plain"]) if b[0])
        added = p50["accounted"] - p50["plain"]
        memory: List[Dict[str, Any]] = []
        if memory_minutes > 0:
            end = time.time() + memory_minutes * 60
            while time.time() < end:
                _sysbench(accounted.address[1], min(10.0, max(1.0, end - time.time())), threads, "run")
                snap = wire_loop.call(ledger.snapshot)
                memory.append({"t": round(memory_minutes * 60 - (end - time.time()), 1), "rss_kib": _rss_kib(),
                               "acked": sum(c["acked"] for c in snap["clients"]),
                               "insert_ranges": sum(len(r) for c in snap["clients"] for r in c["inserts"].values()),
                               "clients": len(snap["clients"])})
        return {"figure": "wire accounting overhead (sysbench oltp_insert)", "cpu_us_per_statement":
                round(cpu_per_statement(), 1), "loadavg": open("/proc/loadavg").read().split()[:3], "rounds": rounds, "seconds": seconds,
                "threads": threads, "samples": samples, "tps": tps, "p50_us": p50,
                "ratio": round(ratio, 4), "ratio_target": TARGET_RATIO, "ratio_met": ratio >= TARGET_RATIO,
                "ratio_median_of_rounds": round(paired, 4), "proxy_cpu_us_per_statement": cpu_us,
                "cpu_ratio": round(cpu_us["plain"] / cpu_us["accounted"], 4)
                if cpu_us["plain"] and cpu_us["accounted"] else None,
                "vs_direct": {k: round(tps[k] / tps["direct"], 4) if tps["direct"] else None
                              for k in ("plain", "accounted")},
                "added_p50_us": round(added, 1), "added_p50_target_us": TARGET_P50_US,
                "added_p50_met": added <= TARGET_P50_US, "memory": memory}
    finally:
        plain.stop()
        plain_loop.stop()
        accounted.stop()
        wire_loop.stop()
        ledger.close()
        with conn.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS " + DB)
        conn.close()


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fiswatch.bench.wire", description=__doc__.split("\n\n")[1])
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--memory-minutes", type=float, default=10.0)
    p.add_argument("--out", help="write the figure as JSON")
    args = p.parse_args(argv)
    try:
        result = run(args.rounds, args.seconds, args.threads, args.memory_minutes)
    except Exception as exc:  # noqa: BLE001
        sys.stderr.write("fiswatch bench wire: %s\n" % exc)
        return 1
    print("throughput with/without accounting: %.3f (target >= %.2f) %s; median of the rounds' ratios %.3f" % (
        result["ratio"], TARGET_RATIO, "met" if result["ratio_met"] else "MISSED", result["ratio_median_of_rounds"]))
    print("throughput vs straight to the server: %.3f without accounting, %.3f with" % (
        result["vs_direct"]["plain"] or 0.0, result["vs_direct"]["accounted"] or 0.0))
    print("proxy loop CPU per statement: %s us without accounting, %s us with: cpu ratio %s (target >= %.2f)" % (
        result["proxy_cpu_us_per_statement"]["plain"], result["proxy_cpu_us_per_statement"]["accounted"],
        result["cpu_ratio"], TARGET_RATIO))
    print("p50 per statement: %.0f us without, %.0f us with: %+.0f us (target <= %.0f) %s" % (
        result["p50_us"]["plain"], result["p50_us"]["accounted"], result["added_p50_us"], TARGET_P50_US,
        "met" if result["added_p50_met"] else "MISSED"))
    print("accounting CPU per INSERT + OK (in-process, no sockets): %.1f us; load average %s" % (
        result["cpu_us_per_statement"], " ".join(result["loadavg"])))
    for m in result["memory"]:
        print("memory t+%5.0fs: rss %d KiB, %d acknowledged, %d insert ranges" % (
            m["t"], m["rss_kib"], m["acked"], m["insert_ranges"]))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(result, fh, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
