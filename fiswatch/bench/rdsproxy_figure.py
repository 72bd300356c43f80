"""Figure 9 (issue 22): the lab's RDS Proxy (`lab up --proxy`, endpoint aurora-proxy).

`python -m fiswatch.bench.rdsproxy_figure [--quick] [--repeats N] [--out FILE]` starts its own lab
with the proxy on a free loopback prefix and measures, in the same run:

a. Each client's write gap through `lab failover aurora` (the demo's `fast` profile), by the cluster
   name and via the proxy side by side: the workshop's reconnect loop (figure 3's baseline), the
   fiswatch PyMySQL and mysql-connector probes. Per failover the longest gap between acknowledged
   writes overlapping the outage; medians over `repeats` failovers; the ratio proxy / direct.
b. The proxy's own cost: PyMySQL statements (SELECT 1 and an autocommit INSERT) to the writer's
   instance endpoint and via the proxy, interleaved in blocks so both see the same machine load:
   p50 per statement and throughput (statements per second of one client) each way.
"""
import sys
import time
from typing import Any, Dict, List, Optional

from fiswatch.bench.common import Figure, median, percentile
from fiswatch.bench.own_lab import figure_main, own_lab
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


def cost(info: Any, per_way: int, block: int = 100) -> Dict[str, Dict[str, List[float]]]:
    """Seconds per statement, to the writer instance and via the proxy, interleaved blocks."""
    import pymysql

    from fiswatch.lab.api import lab_status

    info = lab_status(info.dir)  # roles now, after the failovers
    writer = next(i for i in info.instances if i.cluster == "aurora" and i.role == "writer")
    ep = info.endpoint("aurora-proxy")
    proxy_ip = info.nameserver[0].rsplit(".", 1)[0] + ".50"  # lab/rdsproxy.py proxy_address
    conns = {way: pymysql.connect(host=host, port=ep.port, user=ep.user, password=ep.password.reveal(),
                                  database=ep.database, autocommit=True, connect_timeout=5, read_timeout=30)
             for way, host in (("direct", writer.address), ("proxy", proxy_ip))}
    out: Dict[str, Dict[str, List[float]]] = {s: {"direct": [], "proxy": []} for s in ("select", "insert")}
    try:
        done = 0
        while done < per_way:
            for statement, text in (("select", "SELECT 1"), ("insert", "INSERT INTO test (value) VALUES (9)")):
                for way, conn in conns.items():
                    cur = conn.cursor()
                    for _ in range(block):
                        t = time.perf_counter()
                        cur.execute(text)
                        cur.fetchall()
                        out[statement][way].append(time.perf_counter() - t)
            done += block
    finally:
        for conn in conns.values():
            conn.close()
    return out


def figure(lab_dir: str, info: Any, repeats: int, per_way: int) -> Figure:
    fig = Figure(9, "RDS Proxy in the lab: each client's gap direct vs via the proxy; the proxy's own cost")
    rows = gap_rows(lab_dir, info, repeats)
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
    lat = cost(info, per_way)
    for statement, ways in lat.items():
        d50, p50 = percentile(ways["direct"], 50), percentile(ways["proxy"], 50)
        if d50 is None or p50 is None:
            continue
        fig.add("%s p50 added by the proxy" % statement, (p50 - d50) * 1e6, "us", 100, "<=",
                "direct p50 %.0f us, via proxy %.0f us; %d statements each way, interleaved blocks"
                % (d50 * 1e6, p50 * 1e6, len(ways["direct"])))
        fig.add("%s throughput via proxy / direct" % statement, sum(ways["direct"]) / sum(ways["proxy"]), "", 0.9,
                ">=", "one client, back to back: %.0f vs %.0f statements/s"
                % (len(ways["proxy"]) / sum(ways["proxy"]), len(ways["direct"]) / sum(ways["direct"])))
    fig.details = {"failovers": rows}
    return fig


def run(quick: bool, repeats: Optional[int] = None) -> Figure:
    with own_lab("rdsproxy", rds_proxy=True) as (lab_dir, info):
        return figure(lab_dir, info, repeats or (1 if quick else 5), 200 if quick else 2000)


def main(argv: Optional[List[str]] = None) -> int:
    return figure_main("fiswatch.bench.rdsproxy_figure", __doc__, run, argv, quick_help="one failover, 200 statements each way",
                       repeats_help="failovers (default 5; --quick 1)")


if __name__ == "__main__":
    sys.exit(main())
