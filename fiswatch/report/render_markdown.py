"""The report as Markdown: headline, one table row per probe, failover steps, gap/stall details."""
from typing import List

from fiswatch.report.model import OutagePair, ProbeReport, Report
from fiswatch.report.render_text import at, failover_label, gap_text, headline, window_text


def _probe_cells(report: Report, p: ProbeReport) -> List[str]:
    gap = p.longest_gap
    stall = p.longest_stall
    if gap is None:
        gap_cell = "-"
    elif gap.open and gap.from_start:
        gap_cell = "never wrote"
    elif gap.open:
        gap_cell = "never recovered (from %s)" % at(report, gap.start)
    else:
        gap_cell = "%.1fs at %s" % (gap.duration, at(report, gap.start))
    beyond = "; ".join(_beyond_cell(report, o) for o in p.outages if o.gap is not None) or "-"
    stall_cell = "-" if stall is None else ("%.1fs (open)" % stall.duration if stall.open else "%.1fs" % stall.duration)
    kinds = ", ".join("%s x%d" % kv for kv in p.errors_by_kind) or "-"
    addr = " -> ".join(p.addresses) or "-"
    return [p.probe, str(p.ops), "%d" % p.errors, kinds, gap_cell, beyond, stall_cell, addr]


def _beyond_cell(report: Report, pair: OutagePair) -> str:
    text = "into the next failover" if pair.into_next else (
        "never" if pair.beyond is None else "%+.1fs" % pair.beyond)
    return ("#%d %s" % (pair.number, text)) if len(report.failovers) > 1 else text


def render_markdown(report: Report) -> str:
    lines = ["# fiswatch report", ""]
    lines += ["- %s" % line for line in headline(report)]
    for note in report.notes:
        lines.append("- note: %s" % note)
    lines += ["", "| probe | ops | errors | errors by kind | longest write gap | beyond outage | longest stall | address |",
              "|---|---:|---:|---|---|---:|---:|---|"]
    for p in report.probes:
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in _probe_cells(report, p)) + " |")
    steps = [(ts, "%s %s" % (failover_label(report, n), step), detail)
             for n, fo in enumerate(report.failovers, 1) for ts, step, detail in fo.steps]
    if steps:
        lines += ["", "Failover steps:", ""]
        lines += ["- %s %s%s" % (at(report, ts), what, " - %s" % detail if detail else "") for ts, what, detail in steps]
    for p in report.probes:
        if p.write_gaps or p.stalls:
            lines += ["", "**%s**: write gaps %s; stalls %s" % (
                p.probe, "; ".join(gap_text(report, g) for g in p.write_gaps) or "none",
                "; ".join(window_text(report, w) for w in p.stalls) or "none")]
    rolled = ["- **%s**: %s" % (p.probe, p.rolled_back_text) for p in report.probes if p.rolled_back]
    if rolled:
        lines += ["", "Rolled back (never acknowledged, never lost):", ""] + rolled
    return "\n".join(lines) + "\n"
