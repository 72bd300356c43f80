"""The report as text: the full `fiswatch report`, and the few lines printed when `watch` ends."""
import time
from typing import List, Optional

from fiswatch.report.model import Gap, OutagePair, Report, Window
from fiswatch.ui.text import truncate


def at(report: Report, ts: Optional[float]) -> str:
    return "-" if ts is None else "t+%.1f" % (ts - report.start)



def failover_label(report: Report, number: int) -> str:
    """`aurora`, or `aurora #2` when the run had more than one failover."""
    fo = report.failovers[number - 1]
    return fo.target + (" #%d" % number if len(report.failovers) > 1 else "")


def _paused(gap: Gap) -> str:
    return "+%.1fs paused, not counted" % gap.paused if gap.paused >= 0.05 else ""


def gap_text(report: Report, gap: Gap) -> str:
    if gap.open and gap.from_start:
        return "never wrote (faults from the start, %d err)" % gap.errors
    if gap.open:
        paused = _paused(gap)
        return "%s.. never recovered (%.1fs until the probes stopped%s)" % (
            at(report, gap.start), gap.duration, "; " + paused if paused else "")
    extra = [] if gap.anchored else ["silent"]
    if gap.errors:
        extra.append("%d err" % gap.errors)
    if gap.in_doubt:
        extra.append("%d in doubt" % gap.in_doubt)
    if _paused(gap):
        extra.append(_paused(gap))
    return "%s..%s %.1fs%s" % (at(report, gap.start), at(report, gap.end), gap.duration,
                               " (%s)" % ", ".join(extra) if extra else "")


def window_text(report: Report, win: Window) -> str:
    if win.open:
        return "%s.. still stalled when the probes stopped (%.1fs)" % (at(report, win.start), win.duration)
    return "%s..%s %.1fs" % (at(report, win.start), at(report, win.end), win.duration)


def pause_text(report: Report, win: Window) -> str:
    if win.open:
        return "%s.. paused until the end (%.1fs)" % (at(report, win.start), win.duration)
    return "%s..%s %.1fs" % (at(report, win.start), at(report, win.end), win.duration)


def outage_text(report: Report, pair: OutagePair, kind: str = "write") -> str:
    """How one probe came through one failover, for the per-probe block (`kind`: read for a read probe)."""
    label = failover_label(report, pair.number)
    if pair.gap is None:
        if pair.failover.outage_start is None:
            return "%s: no outage recorded" % label
        return "%s: no %s gap" % (label, kind)
    where = "gap %s" % at(report, pair.gap.start)
    if pair.into_next:
        doing = "reading" if kind == "read" else "writing"
        return "%s: %s, still not %s when the next failover began" % (label, where, doing)
    if pair.beyond is None:
        return "%s: %s, never recovered" % (label, where)
    text = "%s: %s, %ss resumed %.1fs after the outage ended" % (label, where, kind, pair.beyond)
    if pair.paused_after >= 0.05:
        text += " (and %.1fs paused after it, not counted)" % pair.paused_after
    return text


def headline(report: Report) -> List[str]:
    try:
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(report.start)) if report.start else "?"
    except (OverflowError, OSError, ValueError):  # a `ts` no clock can show
        when = "?"
    lines = ["Run of %.1fs from %s, %d probe(s)%s" % (report.duration, when, len(report.probes),
                                                    "" if report.complete else " (incomplete)")]
    for number, fo in enumerate(report.failovers, 1):
        label = failover_label(report, number)
        if fo.outage is not None:
            lines.append("Lab %s %s%s: outage %s..%s (%.1fs injected)" % (
                fo.kind, label, " (crash)" if fo.crash else "", at(report, fo.outage_start),
                at(report, fo.outage_end), fo.outage))
        else:
            lines.append("Lab %s %s%s started %s, not finished" % (
                fo.kind, label, " (crash)" if fo.crash else "", at(report, fo.started)))
    lines += lab_daemon_lines(report)
    if report.pauses:
        lines.append("Paused (key p): %s%s; not counted in write gaps" % (
            "; ".join(pause_text(report, w) for w in report.pauses[:4]),
            " (+%d more)" % (len(report.pauses) - 4) if len(report.pauses) > 4 else ""))
    for item in report.dns:
        if item.flip_at is not None:
            text = "DNS %s: %s -> %s at %s" % (item.endpoint, ",".join(item.initial), ",".join(item.flipped_to),
                                               at(report, item.flip_at))
            if item.empty_at is not None and item.empty_at < item.flip_at:
                text += ", empty from %s" % at(report, item.empty_at)
            if item.flaps:
                text += ", %d flap(s) back" % item.flaps
            lines.append(text)
            for n, (ts, _, to) in enumerate(item.flips[1:4], 2):  # each later failover's flip on its own line
                lines.append("DNS %s: flip %d -> %s at %s" % (item.endpoint, n, ",".join(to), at(report, ts)))
            if len(item.flips) > 4:
                lines.append("DNS %s: %d more flips" % (item.endpoint, len(item.flips) - 4))
        elif item.initial:
            lines.append("DNS %s: %s, no flip seen" % (item.endpoint, ",".join(item.initial)))
    lines += writes_lines(report)
    return lines


def lab_daemon_lines(report: Report) -> List[str]:
    """The lab's daemon died under the run: what the probes saw from then on is not a failover's doing."""
    out = []
    for k, (ts, state) in enumerate(report.lab_daemon):
        if state != "gone":
            continue
        back = next((t for t, s in report.lab_daemon[k + 1:] if s == "back"), None)
        out.append("Lab daemon gone %s%s: its proxies and DNS stopped, not a failover" % (
            "at " + at(report, ts) if back is None else "%s..%s" % (at(report, ts), at(report, back)),
            "" if back is None else " (then back)"))
    return out


CHECK_LATER = "  check them later: "  # the command line under a NOT VERIFIED line (never cut)


def verify_command(report: Report) -> str:
    """`fiswatch verify FILE` for this record (with --run N when it holds several runs)."""
    path = report.record_path or "FILE"
    if " " in path or "'" in path:
        path = "'%s'" % path.replace("'", "'\\''")
    return "fiswatch verify %s%s" % (path, " --run %d" % report.run if report.run is not None else "")


def writes_lines(report: Report) -> List[str]:
    """Per endpoint: every acknowledged write is either covered by a check (its verdict) or NOT VERIFIED.

    `Writes aurora (verified t+13.7): OK, 68 acknowledged, 0 lost` is what the last check that
    could run found; the writes acknowledged after it (or all of them, with no check) are
    counted as NOT VERIFIED with their time range, and the command that checks them later.
    """
    lines = []
    shown = set()
    unverified = False
    for item in report.writes:
        shown.add(item.endpoint)
        if item.check is not None:
            lines.append("Writes %s (verified %s): %s" % (item.endpoint, at(report, item.check.ts), item.check.verdict))
        if not item.unverified:
            continue
        unverified = True
        why = item.reason or report_reason(report, item.endpoint) or (
            "" if item.check is not None else "no check ran")
        lines.append("Writes %s: %s acknowledged NOT VERIFIED, %s..%s" % (
            item.endpoint, "%d of %d" % (item.unverified, item.acknowledged) if item.verified else
            "%d" % item.acknowledged, at(report, item.unverified_from), at(report, item.last_ts)))
        if why:
            lines.append("  why: %s" % why)
    for check in report.checks:  # a check of an endpoint no probe of the record wrote to
        if check.endpoint not in shown and check is [c for c in report.checks if c.endpoint == check.endpoint][-1]:
            lines.append("Writes %s (verified %s): %s" % (check.endpoint, at(report, check.ts), check.verdict))
    if unverified:
        lines.append(CHECK_LATER + verify_command(report))
    return lines


def report_reason(report: Report, endpoint: str) -> str:
    """Why the run did not check an endpoint's writes at the end, from its `not verified` warning."""
    mine = [reason for name, reason in report.unverified_reasons if name == endpoint]
    anyone = [reason for name, reason in report.unverified_reasons if name == ""]
    return (mine or anyone or [""])[-1]


def comparisons(report: Report, width: int) -> List[str]:
    """Per endpoint with a lab failover, its probes side by side (fiswatch.report.failover_table)."""
    from fiswatch.report.failover_table import comparison_lines

    out: List[str] = []
    for endpoint in dict.fromkeys(p.endpoint for p in report.probes):
        out += comparison_lines(report, width, endpoint)
    return out


def render_text(report: Report) -> str:
    """The full report: headline, failover steps, then a block per probe."""
    lines = headline(report) + comparisons(report, 100)
    for fo in report.failovers:
        if fo.steps:
            lines.append("  steps: " + "  ".join("%s %s" % (at(report, ts), step) for ts, step, _ in fo.steps))
    for note in report.notes:
        lines.append("note: %s" % note)
    for p in report.probes:
        lines.append("")
        lib = " (%s %s)" % (p.library, p.version) if p.library else ""
        lines.append("%s%s%s" % (p.probe, lib, "" if p.available else " - unavailable"))
        kinds = ", ".join("%s x%d" % kv for kv in p.errors_by_kind)
        lines.append("  ops %d, errors %d%s, final state %s" % (p.ops, p.errors, " (%s)" % kinds if kinds else "",
                                                             p.final_state or "-"))
        if p.reads:
            lines.append("  reads: %d answered (a read probe: it writes nothing)" % p.acknowledged)
        else:
            lines.append("  writes: %d acknowledged, %d in doubt" % (p.acknowledged, p.in_doubt)
                         + (", %d failover(s) handled by the client" % p.failovers if p.failovers else ""))
        if p.rolled_back:
            lines.append("  " + p.rolled_back_text)
        kind = "read" if p.reads else "write"
        if p.write_gaps:
            lines.append("  %s gaps: " % kind + "; ".join(gap_text(report, g) for g in p.write_gaps[:6])
                         + (" (+%d more)" % (len(p.write_gaps) - 6) if len(p.write_gaps) > 6 else ""))
        else:
            lines.append("  %s gaps: none" % kind)
        for pair in p.outages:
            lines.append("  vs injected outage %s" % outage_text(report, pair, kind))
        lines.append("  stalls: " + ("; ".join(window_text(report, w) for w in p.stalls[:6]) or "none"))
        if p.addresses:
            lines.append("  address: %s" % (" -> ".join(p.addresses) if len(p.addresses) > 1
                                            else "%s (unchanged)" % p.addresses[0]))
        if p.latency_ms_mean is not None:
            lines.append("  latency: mean %.1f ms, worst second %.1f ms" % (p.latency_ms_mean, p.latency_ms_worst or 0))
    return "\n".join(lines) + "\n"


def summary_lines(report: Report, width: int = 80) -> List[str]:
    """A few lines for the end of `watch`: the run, the failovers' probes side by side, one line per probe."""
    lines = headline(report) + comparisons(report, width)
    name_w = min(max([len(p.probe) for p in report.probes] + [5]), 28)
    for p in report.probes:
        if not p.available:
            lines.append("%-*s unavailable" % (name_w, p.probe))
            continue
        gap = p.longest_gap
        if gap is not None and gap.open and gap.from_start:
            none = "no read" if p.reads else "no write"
            verdict = "NEVER %s (%s)" % ("READ" if p.reads else "WROTE",
                                         p.errors_by_kind[0][0] if p.errors_by_kind else none)
        elif gap is not None and gap.open:
            verdict = "NEVER RECOVERED from %s" % at(report, gap.start)
        elif gap is not None:
            verdict = "gap %.1fs" % gap.duration
            mine = next((o for o in p.outages if o.gap is gap), None)
            if mine is not None:
                verdict += " (%s vs outage%s)" % (_beyond(mine), _number(report, mine))
        else:
            verdict = "no read gap" if p.reads else "no write gap"
        line = "%-*s %6d ops %3d err  %s" % (name_w, p.probe, p.ops, p.errors, verdict)
        stall = p.longest_stall
        # the other failovers' pairings, short: "#2 +0.5s" after "(+8.0s vs outage #1)"
        optional = ["%s %s" % (_number(report, o).strip() or "outage", _beyond(o)) for o in p.outages
                    if o.gap is not None and o.gap is not gap]
        if stall is not None and not (gap is not None and gap.open and stall.open):
            optional.append("stall %.1fs" % stall.duration)
        if len(p.addresses) > 1:
            optional.append("->".join(p.addresses))
        for part in optional:  # only what fits: the verdict matters most
            if len(line) + 2 + len(part) <= width:
                line += "  " + part
        lines.append(line)
        if p.rolled_back:
            lines.append("%-*s %s" % (name_w, "", p.rolled_back_text))
    return [line if line.startswith(CHECK_LATER) else truncate(line, width) for line in lines]


def _beyond(pair: OutagePair) -> str:
    if pair.into_next:
        return "into the next"
    return "never" if pair.beyond is None else "%+.1fs" % pair.beyond


def _number(report: Report, pair: OutagePair) -> str:
    return " #%d" % pair.number if len(report.failovers) > 1 else ""
