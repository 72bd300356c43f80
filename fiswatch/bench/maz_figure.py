"""Figure 8 (issue 24): the lab's Multi-AZ DB cluster.

`python -m fiswatch.bench.maz_figure [--quick] [--repeats N] [--out FILE]` starts its own lab
with `--multi-az-cluster` on a free loopback prefix and measures, in the same run:

a. PyMySQL's write gap through `lab failover maz`, per profile (`planned` ~1 s, `aws` ~35 s):
   the fiswatch PyMySQL probe and the workshop's reconnect loop (the baseline, figure 3's) write
   to the `maz` endpoint side by side; per failover the longest gap between acknowledged writes
   overlapping the outage (fence -> DNS flip). Medians over `repeats` failovers per profile.
b. Semi-synchronous replication's cost on write latency: autocommit INSERTs on the writer,
   p50 and p95 with `rpl_semi_sync_master_enabled` ON and OFF, interleaved in blocks so both
   see the same machine load. The difference is what a commit pays for one reader's
   acknowledgement on loopback (a real cluster adds the network between AZs).
"""
import sys
import time
from typing import Any, Dict, List, Optional

from fiswatch.bench.common import Figure, median, percentile
from fiswatch.bench.own_lab import figure_main, own_lab
from fiswatch.bench.recovery_figure import BASELINE, CLIENTS, RECOVER, SETTLE, longest_gap, spread


def gap_rows(lab_dir: str, info: Any, profile: str, repeats: int) -> List[Dict[str, Any]]:
    """One row per failover: outage and each client's longest gap."""
    from fiswatch.lab.api import failover

    endpoint = info.endpoint("maz")
    nameserver = tuple(info.nameserver)
    clients = [BASELINE] + list(CLIENTS)
    running = {c.name: c.start(endpoint, nameserver) for c in clients}
    rows: List[Dict[str, Any]] = []
    try:
        for _ in range(repeats):
            time.sleep(SETTLE)
            steps: List[Any] = []
            failover(lab_dir, "maz", emit=steps.append, profile=profile)
            time.sleep(RECOVER + 5.0)  # the DNS TTL (5 s) is part of a DNS-following client's gap
            start = next(e.get("outage_start") for e in steps if e.get("step") == "start")
            end = next(e.get("outage_end") for e in steps if e.get("step") == "done")
            row: Dict[str, Any] = {"profile": profile, "outage_s": round(end - start, 3), "gaps_s": {}}
            for c in clients:
                gap = longest_gap(list(running[c.name].writes), start, end)
                row["gaps_s"][c.name] = None if gap is None else round(gap, 3)
            rows.append(row)
    finally:
        for writer in running.values():
            try:
                writer.stop()
            except Exception:  # noqa: BLE001
                pass
    return rows


def semi_sync_latency(info: Any, per_mode: int, block: int = 50) -> Dict[str, List[float]]:
    """Seconds per autocommit INSERT on the maz writer, semi-sync ON vs OFF, interleaved."""
    import pymysql

    from fiswatch.lab import layout as L
    from fiswatch.lab.api import lab_status
    from fiswatch.lab.mariadb import sql

    info = lab_status(info.dir)  # roles now, after the failovers
    writer = next(i for i in info.instances if i.cluster == "maz" and i.role == "writer")
    sock = L.Layout(dir=info.dir).server_socket(L.spec_by_name(writer.name))
    ep = info.endpoint("maz")
    conn = pymysql.connect(host=writer.address, port=ep.port, user=ep.user, password=ep.password.reveal(),
                           database=ep.database, autocommit=True, connect_timeout=3, read_timeout=30)
    out: Dict[str, List[float]] = {"on": [], "off": []}

    def acks() -> Dict[str, str]:
        return {k: v for k, v in sql(sock, ["SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_%'"])}

    before = acks()
    try:
        cur = conn.cursor()
        done = 0
        while done < per_mode:
            for mode in ("on", "off"):
                sql(sock, ["SET GLOBAL rpl_semi_sync_master_enabled=%s" % mode.upper()])
                for _ in range(min(block, per_mode - done)):
                    t = time.perf_counter()
                    cur.execute("INSERT INTO test (value) VALUES (8)")
                    out[mode].append(time.perf_counter() - t)
            done += block
        after = acks()
        # proof the ON blocks really waited for an acknowledgement: every ON commit counted as acknowledged
        out["acked"] = [float(int(after["Rpl_semi_sync_master_yes_tx"]) - int(before["Rpl_semi_sync_master_yes_tx"]))]
        out["not_acked"] = [float(int(after["Rpl_semi_sync_master_no_tx"]) - int(before["Rpl_semi_sync_master_no_tx"]))]
    finally:
        sql(sock, ["SET GLOBAL rpl_semi_sync_master_enabled=ON"])
        conn.close()
    return out


def figure(lab_dir: str, info: Any, repeats: int, profiles: List[str], per_mode: int) -> Figure:
    fig = Figure(8, "Multi-AZ DB cluster: write gap through a maz failover; semi-sync's cost on commits")
    rows: List[Dict[str, Any]] = []
    for profile in profiles:
        mine = gap_rows(lab_dir, info, profile, repeats)
        rows.extend(mine)
        outages = [r["outage_s"] for r in mine]
        loop = [r["gaps_s"][BASELINE.name] for r in mine]
        for c in CLIENTS:
            gaps = [r["gaps_s"][c.name] for r in mine]
            fig.add("maz %s: %s write gap" % (profile, c.name), median(gaps), "s",
                    note="median of %d failovers (outage median %.2f s); spread %s"
                    % (len(mine), median(outages) or 0.0, spread(gaps)))
            diffs = [None if g is None or b is None else g - b for g, b in zip(gaps, loop)]
            fig.add("maz %s: %s gap - loop gap" % (profile, c.name), median(diffs), "s", 0.1, "<=",
                    "spread %s" % spread(diffs))
        fig.add("maz %s: workshop loop write gap" % profile, median(loop), "s", note="baseline; spread %s"
                % spread(loop))
    lat = semi_sync_latency(info, per_mode)
    on50, off50 = percentile(lat["on"], 50), percentile(lat["off"], 50)
    fig.add("commit p50, semi-sync ON", None if on50 is None else on50 * 1000, "ms",
            note="%d autocommit INSERTs on the writer, interleaved blocks; p95 %.3f ms"
            % (len(lat["on"]), (percentile(lat["on"], 95) or 0) * 1000))
    fig.add("commit p50, semi-sync OFF", None if off50 is None else off50 * 1000, "ms",
            note="same writer, same blocks; p95 %.3f ms" % ((percentile(lat["off"], 95) or 0) * 1000))
    fig.add("semi-sync cost, p50 ON - OFF", None if on50 is None or off50 is None else (on50 - off50) * 1000, "ms",
            note="one reader's acknowledgement over loopback; %d commits acknowledged by a reader, %d not"
            % (lat["acked"][0], lat["not_acked"][0]))
    fig.details = {"failovers": rows}
    return fig


def run(quick: bool, repeats: Optional[int] = None) -> Figure:
    with own_lab("maz", multi_az_cluster=True) as (lab_dir, info):
        return figure(lab_dir, info, repeats or (1 if quick else 5), ["planned"] if quick else ["planned", "aws"],
                      100 if quick else 1000)


def main(argv: Optional[List[str]] = None) -> int:
    return figure_main("fiswatch.bench.maz_figure", __doc__, run, argv, quick_help="one planned failover, 100 commits per mode",
                       repeats_help="failovers per profile (default 5; --quick 1)")


if __name__ == "__main__":
    sys.exit(main())
