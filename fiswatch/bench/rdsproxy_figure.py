"""Figure 9 (issue 22): the lab's RDS Proxy (`lab up --proxy`, endpoint aurora-proxy).

`python -m fiswatch.bench.rdsproxy_figure [--quick] [--repeats N] [--cost-only] [--statements N] [--out FILE]`
starts its own lab with the proxy on a free loopback prefix and measures, in the same run:

a. Each client's write gap through `lab failover aurora` (the demo's `fast` profile), by the cluster
   name and via the proxy side by side: the workshop's reconnect loop (figure 3's baseline), the
   fiswatch PyMySQL and mysql-connector probes. Per failover the longest gap between acknowledged
   writes overlapping the outage; medians over `repeats` failovers; the ratio proxy / direct.
b. The proxy's own cost: PyMySQL statements (SELECT 1 and an autocommit INSERT) to the writer's
   instance endpoint and via the proxy, interleaved in blocks so both see the same machine load:
   p50 per statement and throughput (statements per second of one client) each way, the ratio of the
   medians and the median of the rounds' ratios, and the CPU the proxy adds per statement on its loop's
   thread (time.thread_time: what a loaded machine does not change). `--cost-only`: b. alone.
"""
import argparse
import sys
import time
from typing import Any, Dict, List, Optional

from fiswatch.bench.common import Figure, median, percentile
from fiswatch.bench.own_lab import own_lab, print_metrics
from fiswatch.bench.recovery_figure import BASELINE, RECOVER, SETTLE, longest_gap, probe_client, spread

ENDPOINTS = ("aurora", "aurora-proxy")
CLIENTS = [BASELINE, probe_client("pymysql", "PyMySQL probe"), probe_client("mysql-connector", "mysql-connector probe")]


def gap_rows(lab_dir: str, info: Any, repeats: int) -> List[Dict[str, Any]]:
    from fiswatch.lab.api import failover

    nameserver = tuple(info.nameserver)
    running = {(ep, c.name): c.start(info.endpoint(ep), nameserver) for ep in ENDPOINTS for c in CLIENTS}
    rows: List[Dict[str, Any]] = []
    try:
        for _ in range(repeats):
            time.sleep(SETTLE)
            steps: List[Any] = []
            failover(lab_dir, "aurora", emit=steps.append, profile="fast")
            time.sleep(RECOVER + 5.0)  # the DNS TTL (5 s) is part of a DNS-following client's gap
            start = next(e.get("outage_start") for e in steps if e.get("step") == "start")
            end = next(e.get("outage_end") for e in steps if e.get("step") == "done")
            row: Dict[str, Any] = {"outage_s": round(end - start, 3), "gaps_s": {}}
            for (ep, name), writer in running.items():
                gap = longest_gap(list(writer.writes), start, end)
                row["gaps_s"]["%s %s" % (ep, name)] = None if gap is None else round(gap, 3)
            rows.append(row)
    finally:
        for writer in running.values():
            try:
                writer.stop()
            except Exception:  # noqa: BLE001
                pass
    return rows


def proxy_cpu(lab_dir: str) -> float:
    """CPU seconds the RDS Proxy's loop thread has used so far (`thread_cpu_s` of its stats, time.thread_time)."""
    import os

    from fiswatch.lab import layout as L
    from fiswatch.lab.control import request

    state = request(os.path.join(lab_dir, L.CONTROL_SOCKET), "state", timeout=10)
    return float((state.get("rds_proxy") or {}).get("thread_cpu_s") or 0.0)


def cost(info: Any, per_way: int, block: int = 100) -> Dict[str, Any]:
    """Seconds per statement, to the writer instance and via the proxy, in rounds of one block each way
    (the order alternates per round, so a drifting machine load hits both ways alike); per round and way
    the CPU seconds of the loop thread the proxy runs on (`cpu`)."""
    import pymysql

    from fiswatch.lab.api import lab_status

    info = lab_status(info.dir)  # roles now, after the failovers
    writer = next(i for i in info.instances if i.cluster == "aurora" and i.role == "writer")
    ep = info.endpoint("aurora-proxy")
    proxy_ip = info.nameserver[0].rsplit(".", 1)[0] + ".50"  # lab/rdsproxy.py proxy_address
    conns = {way: pymysql.connect(host=host, port=ep.port, user=ep.user, password=ep.password.reveal(),
                                  database=ep.database, autocommit=True, connect_timeout=5, read_timeout=30)
             for way, host in (("direct", writer.address), ("proxy", proxy_ip))}
    out: Dict[str, Any] = {s: {"direct": [], "proxy": [], "rounds": [], "cpu": {"direct": [], "proxy": []}}
                           for s in ("select", "insert")}
    try:
        done = 0
        while done < per_way:
            for statement, text in (("select", "SELECT 1"), ("insert", "INSERT INTO test (value) VALUES (9)")):
                ways = ("direct", "proxy") if (done // block) % 2 == 0 else ("proxy", "direct")
                spent = {}
                for way in ways:
                    cur = conns[way].cursor()
                    cpu0 = proxy_cpu(info.dir)
                    t0 = time.perf_counter()
                    for _ in range(block):
                        t = time.perf_counter()
                        cur.execute(text)
                        cur.fetchall()
                        out[statement][way].append(time.perf_counter() - t)
                    spent[way] = time.perf_counter() - t0
                    out[statement]["cpu"][way].append(proxy_cpu(info.dir) - cpu0)
                out[statement]["rounds"].append(spent["direct"] / spent["proxy"])
            done += block
    finally:
        for conn in conns.values():
            conn.close()
    return out


def cost_rows(fig: Figure, lat: Dict[str, Any]) -> None:
    """The proxy's cost: p50 added, throughput ratios (of medians; median of the rounds'), CPU per statement."""
    for statement, ways in lat.items():
        d50, p50 = percentile(ways["direct"], 50), percentile(ways["proxy"], 50)
        if d50 is None or p50 is None:
            continue
        n = len(ways["direct"])
        fig.add("%s p50 added by the proxy" % statement, (p50 - d50) * 1e6, "us", 100, "<=",
                "direct p50 %.0f us, via proxy %.0f us; %d statements each way in %d alternating rounds"
                % (d50 * 1e6, p50 * 1e6, n, len(ways["rounds"])))
        fig.add("%s throughput via proxy / direct" % statement, d50 / p50, "", 0.9, ">=",
                "ratio of the medians: one client, back to back, %.0f vs %.0f statements/s"
                % (1 / p50, 1 / d50))
        fig.add("%s throughput via proxy / direct, per round" % statement, median(ways["rounds"]), "", 0.9, ">=",
                "median of %d rounds' ratios; spread %s" % (len(ways["rounds"]), spread(ways["rounds"])))
        per = block_size(ways)
        cpu_p = median([c / per for c in ways["cpu"]["proxy"]])
        cpu_d = median([c / per for c in ways["cpu"]["direct"]])
        if cpu_p is not None and cpu_d is not None:
            fig.add("%s proxy CPU per statement" % statement, (cpu_p - cpu_d) * 1e6, "us", None, "",
                    "time.thread_time of the loop thread the proxy runs on (the lab's, shared with the instance "
                    "proxies): %.1f us per statement via the proxy, %.1f us direct; the difference is the "
                    "proxy's, load-independent" % (cpu_p * 1e6, cpu_d * 1e6))


def block_size(ways: Dict[str, Any]) -> int:
    return max(1, len(ways["direct"]) // max(1, len(ways["rounds"])))


def figure(lab_dir: str, info: Any, repeats: int, per_way: int) -> Figure:
    fig = Figure(9, "RDS Proxy in the lab: each client's gap direct vs via the proxy; the proxy's own cost")
    rows = gap_rows(lab_dir, info, repeats) if repeats else []
    outages = [r["outage_s"] for r in rows]
    for c in CLIENTS:
        direct = [r["gaps_s"]["aurora " + c.name] for r in rows]
        via = [r["gaps_s"]["aurora-proxy " + c.name] for r in rows]
        d, v = median([g for g in direct if g is not None]), median([g for g in via if g is not None])
        fig.add("%s gap, by the cluster name" % c.name, d, "s",
                note="median of %d fast aurora failovers (outage median %.2f s); spread %s"
                % (len(rows), median(outages) or 0.0, spread(direct)))
        fig.add("%s gap, via the RDS Proxy" % c.name, v, "s", note="same failovers; spread %s" % spread(via))
        if d and v is not None:
            fig.add("%s gap via proxy / direct" % c.name, v / d, "", 0.5, "<=",
                    "AWS: up to 66 % shorter (docs), up to 79 % for Aurora MySQL (blog)")
    cost_rows(fig, cost(info, per_way))
    fig.details = {"failovers": rows}
    return fig


def run(quick: bool, repeats: Optional[int] = None, per_way: Optional[int] = None) -> Figure:
    """`repeats` 0: the proxy's cost only, no failover."""
    with own_lab("rdsproxy", rds_proxy=True) as (lab_dir, info):
        return figure(lab_dir, info, (1 if quick else 5) if repeats is None else repeats,
                      per_way or (200 if quick else 2000))


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fiswatch.bench.rdsproxy_figure", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="one failover, 200 statements each way")
    p.add_argument("--repeats", type=int, default=None, help="failovers (default 5; --quick 1)")
    p.add_argument("--cost-only", action="store_true", help="the proxy's own cost only (b.), no failover")
    p.add_argument("--statements", type=int, default=None,
                   help="statements each way and kind, in rounds of 100 (default 2000; --quick 200)")
    p.add_argument("--out", help="write the figure as JSON here")
    args = p.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        p.error("--repeats must be at least 1")
    if args.statements is not None and args.statements < 100:
        p.error("--statements must be at least 100")
    print_metrics(run(args.quick, 0 if args.cost_only else args.repeats, args.statements), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
