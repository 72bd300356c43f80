"""Figure 10 (issue 24): a read probe on a reader that a writer failover does not promote.

`python -m fiswatch.bench.read_figure [--quick] [--repeats N] [--out FILE]` starts its own lab
with two Aurora readers (`lab up --readers 2`) on a free loopback prefix; a PyMySQL write probe
on the cluster endpoint (`aurora`) and a PyMySQL read probe on `instance-3` (the lab promotes its
first reader; the others only follow the new writer) run side by side through `repeats` fast
Aurora failovers. Per failover and probe: the longest gap between successes (acknowledged
writes; answered reads) that overlaps the injected outage (figure 3's `longest_gap`). The figure:
both medians, and the read probe's as a share of the write probe's (expected: the read gap is
the probe's own pace, no outage in it).
"""
import sys
import time
from typing import Any, Dict, List, Optional

from fiswatch.bench.common import Figure, median
from fiswatch.bench.own_lab import figure_main, own_lab
from fiswatch.bench.recovery_figure import RECOVER, SETTLE, ProbeWriter, longest_gap, spread

READER = "instance-3"


def gap_rows(lab_dir: str, info: Any, repeats: int) -> List[Dict[str, Any]]:
    """One row per Aurora failover: outage, the write probe's and the read probe's longest gap."""
    from fiswatch.config.reads import with_reads
    from fiswatch.lab.api import failover

    nameserver = tuple(info.nameserver)
    writer_ep, reader_ep = with_reads([info.endpoint("aurora")], [READER], info)
    probes = {"write": ProbeWriter(writer_ep, nameserver, "pymysql"),
              "read": ProbeWriter(reader_ep, nameserver, "pymysql")}
    rows: List[Dict[str, Any]] = []
    try:
        for _ in range(repeats):
            time.sleep(SETTLE)
            steps: List[Any] = []
            failover(lab_dir, "aurora", emit=steps.append, profile="fast")
            time.sleep(RECOVER)
            start = next(e.get("outage_start") for e in steps if e.get("step") == "start")
            end = next(e.get("outage_end") for e in steps if e.get("step") == "done")
            row: Dict[str, Any] = {"outage_s": round(end - start, 3), "gaps_s": {}}
            for name, probe in probes.items():
                gap = longest_gap(list(probe.writes), start, end)
                row["gaps_s"][name] = None if gap is None else round(gap, 3)
            rows.append(row)
    finally:
        for probe in probes.values():
            try:
                probe.stop()
            except Exception:  # noqa: BLE001
                pass
    return rows


def figure(lab_dir: str, info: Any, repeats: int) -> Figure:
    fig = Figure(9, "Reads through an Aurora writer failover: a non-promoted reader vs the writer endpoint")
    rows = gap_rows(lab_dir, info, repeats)
    outages = [r["outage_s"] for r in rows]
    writes = [r["gaps_s"]["write"] for r in rows]
    reads = [r["gaps_s"]["read"] for r in rows]
    fig.add("PyMySQL write probe (aurora): gap", median(writes), "s",
            note="median of %d fast failovers (outage median %.2f s); spread %s"
            % (len(rows), median(outages) or 0.0, spread(writes)))
    fig.add("PyMySQL read probe (%s): gap" % READER, median(reads), "s", 1.0, "<=",
            note="longest silence between two reads overlapping the outage; spread %s" % spread(reads))
    mw, mr = median(writes), median(reads)
    fig.add("read gap / write gap", None if not mw or mr is None else mr / mw, "", note="medians")
    fig.details = {"failovers": rows}
    return fig


def run(quick: bool, repeats: Optional[int] = None) -> Figure:
    with own_lab("read", readers=2) as (lab_dir, info):
        return figure(lab_dir, info, repeats or (1 if quick else 5))


def main(argv: Optional[List[str]] = None) -> int:
    return figure_main("fiswatch.bench.read_figure", __doc__, run, argv, quick_help="one failover",
                       repeats_help="failovers (default 5; --quick 1)")


if __name__ == "__main__":
    sys.exit(main())
