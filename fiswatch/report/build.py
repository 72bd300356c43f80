"""What happened to each probe during a run, built from its event stream (docs/events.md).

`build_report(events)` is pure: it takes the event dicts of a record (or of a watch kept in
memory) and returns frozen dataclasses. The renderers turn a Report into text, Markdown,
a JSON-ready dict, or the few lines printed when `watch` ends (`summary_lines`).

Write gaps. A probe's acknowledged writes (`write` events) normally come every interval.
A gap between two consecutive writes of a probe is a *write gap* when
  - a fault of that probe falls inside it (an `error`, a `write_in_doubt`, or a `state`
    change to STALLED / ERROR / RECONNECTING) - anchored on what the probe saw; or
  - it is longer than max(1 s, 10 x the probe's median write interval) - a silent pause.
A fault after the last write opens a gap that never closed ("never recovered"); faults
before the first write make a gap from the run start. Gap = last success before the fault
to the first success after it, so it is what a user of that driver waited.

Stall windows run from the start of the call that hung (the STALLED event's time minus
`stalled_for`, else minus the run's `stall_after`) to the probe's next state change, or to
the end of the run when it never changed again.
"""
import bisect
import statistics
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from fiswatch.report.coerce import as_float, as_int
from fiswatch.report.model import Gap, LabFailover, ProbeReport, Report, Window, failover_for
from fiswatch.report.timeline import dns_changes, lab_failovers, tick_series, timeline_markers

FAULT_STATES = frozenset(["STALLED", "ERROR", "RECONNECTING"])
MIN_SILENT_GAP = 1.0
SILENT_GAP_FACTOR = 10.0

def build_report(events: Iterable[Dict[str, Any]], notes: Sequence[str] = ()) -> Report:
    """A Report from event dicts (any order; sorted by `ts` here). Pure."""
    evs = sorted((e for e in events if isinstance(e, dict) and "ts" in e), key=lambda e: float(e["ts"]))
    out_notes = list(notes)
    if not evs:
        return Report(start=0.0, end=0.0, notes=tuple(out_notes + ["no events"]))
    run_start = next((e for e in evs if e.get("event") == "run_start"), None)
    summary = next((e for e in reversed(evs) if e.get("event") == "summary"), None)
    start = float(run_start["ts"]) if run_start else float(evs[0]["ts"])
    end = float(evs[-1]["ts"])
    if run_start is None:
        out_notes.append("no run_start line: times are relative to the first event")
    if summary is None:
        out_notes.append("no summary line: the run did not end cleanly (killed?)")
    stall_after = as_float((run_start or {}).get("stall_after")) or 0.0

    failovers = lab_failovers(evs)
    dns = dns_changes(evs)
    probe_meta = _probe_meta(run_start, evs)
    endpoints = [meta["endpoint"] for meta in probe_meta.values()]
    probes = []
    for name, meta in probe_meta.items():
        mine = [e for e in evs if e.get("probe") == name]
        probes.append(_probe_report(name, meta, mine, evs, summary, start, end, stall_after,
                                    failover_for(failovers, meta["endpoint"], endpoints)))
    order = {name: n for n, name in enumerate(endpoints)}
    dns.sort(key=lambda d: (order.get(d.endpoint, len(order)), d.endpoint))
    marks = timeline_markers(evs, dns)
    verified = tuple((float(e["ts"]), str(e.get("endpoint") or ""), _verdict(e)) for e in evs
                     if e.get("event") == "verify")
    return Report(start=start, end=end, probes=tuple(probes), dns=tuple(dns), failovers=tuple(failovers),
                  markers=tuple(marks), notes=tuple(out_notes), complete=summary is not None, verified=verified)


def _verdict(ev: Dict[str, Any]) -> str:
    """`verify` event (written by the run after a failover / at the end) as a few words."""
    if ev.get("error"):
        return "not verified (%s)" % ev["error"]
    lost = (as_int(ev.get("lost")) or 0) + (as_int(ev.get("changed")) or 0)
    return "%s, %s acknowledged, %d lost" % ("OK" if not lost else "LOST WRITES", ev.get("acknowledged"), lost)


def _probe_meta(run_start: Optional[Dict[str, Any]], evs: List[Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """probe name -> {endpoint, backend, library, version, available}, run_start order first."""
    meta = {}  # type: Dict[str, Dict[str, Any]]
    for item in (run_start or {}).get("probes") or ():
        if isinstance(item, dict) and item.get("probe"):
            meta[str(item["probe"])] = {
                "endpoint": str(item.get("endpoint") or str(item["probe"]).split("/")[0]),
                "backend": str(item.get("backend") or str(item["probe"]).split("/", 1)[-1]),
                "library": str(item.get("library") or ""), "version": str(item.get("version") or ""),
                "available": item.get("available", True) is not False}
    for ev in evs:
        name = ev.get("probe")
        if isinstance(name, str) and name and name not in meta:
            meta[name] = {"endpoint": str(ev.get("endpoint") or name.split("/")[0]),
                          "backend": str(ev.get("backend") or name.split("/", 1)[-1]),
                          "library": "", "version": "", "available": True}
    return meta


def _probe_report(name: str, meta: Dict[str, Any], mine: List[Dict[str, Any]], evs: List[Dict[str, Any]],
                  summary: Optional[Dict[str, Any]], start: float, end: float, stall_after: float,
                  failover: Optional[LabFailover]) -> ProbeReport:
    writes = [float(e["ts"]) for e in mine if e.get("event") == "write"]
    doubts = [float(e["ts"]) for e in mine if e.get("event") == "write_in_doubt"]
    errors = [e for e in mine if e.get("event") == "error"]
    states = [e for e in mine if e.get("event") == "state"]
    kinds = {}  # type: Dict[str, int]
    for e in errors:
        key = _error_key(e)
        kinds[key] = kinds.get(key, 0) + 1
    stalls = _stalls(states, end, stall_after)
    faults = sorted([float(e["ts"]) for e in errors] + doubts
                    + [float(e["ts"]) for e in states if e.get("state") in FAULT_STATES]
                    + [w.start for w in stalls])
    final = (summary or {}).get("probes", {}).get(name) if isinstance((summary or {}).get("probes"), dict) else None
    final = final if isinstance(final, dict) else {}
    final_state = final.get("state") or (states[-1].get("state") if states else None)
    gaps = _write_gaps(writes, faults, [float(e["ts"]) for e in errors], doubts, start, end,
                       ended_ok=final_state in (None, "OK", "STOPPED"))
    addresses = [e.get("address") for e in mine if e.get("event") in ("connect", "write") and e.get("address")]
    ticks = tick_series(evs, name)
    ops_from_ticks = sum(ops for _, ops, _ in ticks)
    latencies = [(ops, lat) for _, ops, lat in ticks if lat is not None]
    weight = sum(max(ops, 1) for ops, _ in latencies)
    mean = sum(max(ops, 1) * lat for ops, lat in latencies) / weight if latencies else None
    ops = as_int(final.get("ops"))
    if ops is None:
        ops = ops_from_ticks if ticks else len(writes)
    n_errors = as_int(final.get("errors"))
    if not meta.get("available", True):
        final_state = final_state or "UNAVAILABLE"
    outage_gap, beyond = _outage_gap(gaps, failover)
    return ProbeReport(
        probe=name, endpoint=meta["endpoint"], backend=meta["backend"], library=meta["library"],
        version=meta["version"], available=bool(meta.get("available", True)), ops=ops,
        acknowledged=len(writes), in_doubt=len(doubts),
        errors=max(n_errors if n_errors is not None else 0, len(errors)),
        errors_by_kind=tuple(sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))),
        stalls=tuple(stalls), write_gaps=tuple(gaps),
        address_before=addresses[0] if addresses else None,
        address_after=addresses[-1] if addresses else None, final_state=final_state,
        latency_ms_mean=None if mean is None else round(mean, 2),
        latency_ms_worst=max(lat for _, lat in latencies) if latencies else None,
        outage_gap=outage_gap, beyond_outage=beyond)



def _error_key(ev: Dict[str, Any]) -> str:
    code, kind = ev.get("code"), str(ev.get("kind") or "error")
    return "%s %s" % (code, kind) if code is not None else kind


def _stalls(states: List[Dict[str, Any]], end: float, stall_after: float) -> List[Window]:
    out = []
    began = None  # type: Optional[float]
    for ev in states:
        ts = float(ev["ts"])
        if ev.get("state") == "STALLED":
            if began is None:
                back = as_float(ev.get("stalled_for"))
                began = ts - (back if back is not None else stall_after)
        elif began is not None:
            out.append(Window(began, max(ts, began)))
            began = None
    if began is not None:
        out.append(Window(began, max(end, began), open=True))
    return out


def _write_gaps(writes: List[float], faults: List[float], errors: List[float], doubts: List[float],
                start: float, end: float, ended_ok: bool = True) -> List[Gap]:
    """See the module docstring: gaps anchored on faults, or silent and long."""
    if not writes:
        if faults:
            return [Gap(start, end, open=True, errors=len(errors), in_doubt=len(doubts), from_start=True)]
        return []
    intervals = [b - a for a, b in zip(writes, writes[1:])]
    normal = statistics.median(intervals) if intervals else 0.0
    threshold = max(MIN_SILENT_GAP, SILENT_GAP_FACTOR * normal)

    def count(series: List[float], lo: float, hi: float) -> int:
        return bisect.bisect_left(series, hi) - bisect.bisect_right(series, lo)

    gaps = []
    if count(faults, start - 1e9, writes[0]):
        gaps.append(Gap(start, writes[0], errors=count(errors, -1e18, writes[0]),
                        in_doubt=count(doubts, -1e18, writes[0]), from_start=True))
    for a, b in zip(writes, writes[1:]):
        anchored = count(faults, a, b) > 0
        if anchored or b - a > threshold:
            gaps.append(Gap(a, b, anchored=anchored, errors=count(errors, a, b), in_doubt=count(doubts, a, b)))
    last = writes[-1]
    tail_faults = count(faults, last, 1e18)
    if tail_faults or (end - last > threshold and not ended_ok):
        gaps.append(Gap(last, max(end, last), open=True, anchored=tail_faults > 0,
                        errors=count(errors, last, 1e18), in_doubt=count(doubts, last, 1e18)))
    return gaps


def _outage_gap(gaps: List[Gap], failover: Optional[LabFailover]) -> Tuple[Optional[Gap], Optional[float]]:
    """The longest gap overlapping the injected outage, and how far it ran past its end."""
    if failover is None or failover.outage_start is None:
        return None, None
    lo = failover.outage_start
    hi = failover.outage_end if failover.outage_end is not None else float("inf")
    over = [g for g in gaps if g.start <= hi and g.end >= lo and not (g.open and g.from_start)]
    if not over:
        return None, None
    gap = max(over, key=lambda g: g.duration)
    if gap.open or failover.outage_end is None:
        return gap, None
    return gap, gap.end - failover.outage_end
