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
import time
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

FAULT_STATES = frozenset(["STALLED", "ERROR", "RECONNECTING"])
MIN_SILENT_GAP = 1.0
SILENT_GAP_FACTOR = 10.0


@dataclass(frozen=True)
class Window:
    """A stall window (absolute unix times); `open` = still going when the run ended."""

    start: float
    end: float
    open: bool = False

    @property
    def duration(self) -> float:
        return max(0.0, self.end - self.start)


@dataclass(frozen=True)
class Gap:
    """From the last acknowledged write before a fault to the first one after it."""

    start: float
    end: float
    open: bool = False  # no write after it: never recovered
    anchored: bool = True  # a fault of the probe fell inside (False: only long)
    errors: int = 0
    in_doubt: int = 0
    from_start: bool = False  # no write before it: starts at the run start

    @property
    def duration(self) -> float:
        return max(0.0, self.end - self.start)


@dataclass(frozen=True)
class DnsChange:
    """How an endpoint's DNS answer moved during the run."""

    endpoint: str
    initial: Tuple[str, ...] = ()
    flipped_to: Tuple[str, ...] = ()
    flip_at: Optional[float] = None  # first non-empty answer different from `initial`
    empty_at: Optional[float] = None  # first empty / failed answer
    changes: int = 0  # answer changes seen after the first
    flaps: int = 0  # answers back to `initial` after the flip


@dataclass(frozen=True)
class LabFailover:
    """A failover injected by the lab: its steps and the outage window it caused."""

    target: str
    crash: bool
    started: float
    outage_start: Optional[float] = None
    outage_end: Optional[float] = None
    steps: Tuple[Tuple[float, str, str], ...] = ()  # (ts, step, detail)

    @property
    def outage(self) -> Optional[float]:
        if self.outage_start is None or self.outage_end is None:
            return None
        return max(0.0, self.outage_end - self.outage_start)


@dataclass(frozen=True)
class Marker:
    """A moment worth a vertical line on the timeline (lab step, FIS state, DNS flip)."""

    ts: float
    kind: str  # lab | fis | topology | dns
    text: str
    endpoint: str = ""  # the endpoint it concerns ("" = all)
    label: str = ""  # a short name for the picture (the step)


@dataclass(frozen=True)
class ProbeReport:
    probe: str
    endpoint: str
    backend: str
    library: str = ""
    version: str = ""
    available: bool = True
    ops: int = 0
    acknowledged: int = 0
    in_doubt: int = 0
    errors: int = 0
    errors_by_kind: Tuple[Tuple[str, int], ...] = ()  # ("2013 lost", 3), most first
    stalls: Tuple[Window, ...] = ()
    write_gaps: Tuple[Gap, ...] = ()
    address_before: Optional[str] = None
    address_after: Optional[str] = None
    final_state: Optional[str] = None
    latency_ms_mean: Optional[float] = None
    latency_ms_worst: Optional[float] = None  # worst one-second mean
    outage_gap: Optional[Gap] = None  # the gap spanning the lab's injected outage
    beyond_outage: Optional[float] = None  # outage_gap.end - outage_end (None if open)

    @property
    def longest_stall(self) -> Optional[Window]:
        return max(self.stalls, key=lambda w: w.duration) if self.stalls else None

    @property
    def longest_gap(self) -> Optional[Gap]:
        return max(self.write_gaps, key=lambda g: g.duration) if self.write_gaps else None

    @property
    def recovered(self) -> bool:
        """False when the probe ended inside a write gap or a stall."""
        return not any(g.open for g in self.write_gaps) and not any(w.open for w in self.stalls)


@dataclass(frozen=True)
class Report:
    start: float
    end: float
    probes: Tuple[ProbeReport, ...] = ()
    dns: Tuple[DnsChange, ...] = ()
    failovers: Tuple[LabFailover, ...] = ()
    markers: Tuple[Marker, ...] = ()
    notes: Tuple[str, ...] = ()
    complete: bool = False  # the run's `summary` line is there
    verified: Tuple[Tuple[float, str, str], ...] = ()  # (ts, endpoint, verdict) of `verify` events

    @property
    def duration(self) -> float:
        return max(0.0, self.end - self.start)

    def rel(self, ts: Optional[float]) -> Optional[float]:
        return None if ts is None else ts - self.start

    def dns_for(self, endpoint: str) -> Optional[DnsChange]:
        for item in self.dns:
            if item.endpoint == endpoint:
                return item
        return None

    def failover_for(self, endpoint: str) -> Optional[LabFailover]:
        return _failover_for(self.failovers, endpoint, [p.endpoint for p in self.probes])


# ----------------------------------------------------------------------------- building


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
    stall_after = _float((run_start or {}).get("stall_after")) or 0.0

    failovers = _failovers(evs)
    dns = _dns_changes(evs)
    probe_meta = _probe_meta(run_start, evs)
    endpoints = [meta["endpoint"] for meta in probe_meta.values()]
    probes = []
    for name, meta in probe_meta.items():
        mine = [e for e in evs if e.get("probe") == name]
        probes.append(_probe_report(name, meta, mine, evs, summary, start, end, stall_after,
                                    _failover_for(failovers, meta["endpoint"], endpoints)))
    order = {name: n for n, name in enumerate(endpoints)}
    dns.sort(key=lambda d: (order.get(d.endpoint, len(order)), d.endpoint))
    markers = _markers(evs, dns)
    verified = tuple((float(e["ts"]), str(e.get("endpoint") or ""), _verdict(e)) for e in evs
                     if e.get("event") == "verify")
    return Report(start=start, end=end, probes=tuple(probes), dns=tuple(dns), failovers=tuple(failovers),
                  markers=tuple(markers), notes=tuple(out_notes), complete=summary is not None, verified=verified)


def _verdict(ev: Dict[str, Any]) -> str:
    """`verify` event (written by the run after a failover / at the end) as a few words."""
    if ev.get("error"):
        return "not verified (%s)" % ev["error"]
    lost = (_int(ev.get("lost")) or 0) + (_int(ev.get("changed")) or 0)
    return "%s, %s acknowledged, %d lost" % ("OK" if not lost else "LOST WRITES", ev.get("acknowledged"), lost)


def _float(value: Any) -> Optional[float]:
    try:
        return None if value is None or isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        return None


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
    ticks = _tick_series(evs, name)
    ops_from_ticks = sum(ops for _, ops, _ in ticks)
    latencies = [(ops, lat) for _, ops, lat in ticks if lat is not None]
    weight = sum(max(ops, 1) for ops, _ in latencies)
    mean = sum(max(ops, 1) * lat for ops, lat in latencies) / weight if latencies else None
    ops = _int(final.get("ops"))
    if ops is None:
        ops = ops_from_ticks if ticks else len(writes)
    n_errors = _int(final.get("errors"))
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


def _int(value: Any) -> Optional[int]:
    try:
        return None if value is None or isinstance(value, bool) else int(value)
    except (TypeError, ValueError):
        return None


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
                back = _float(ev.get("stalled_for"))
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


def _tick_series(evs: List[Dict[str, Any]], name: str) -> List[Tuple[float, int, Optional[float]]]:
    out = []
    for ev in evs:
        if ev.get("event") != "tick" or not isinstance(ev.get("probes"), dict):
            continue
        item = ev["probes"].get(name)
        if isinstance(item, dict):
            out.append((float(ev["ts"]), _int(item.get("ops")) or 0, _float(item.get("latency_ms"))))
    return out


def ops_series(events: Iterable[Dict[str, Any]]) -> Dict[str, List[Tuple[float, int]]]:
    """probe -> [(ts, ops in that second)] from `tick` events, for the timeline."""
    out = {}  # type: Dict[str, List[Tuple[float, int]]]
    for ev in sorted((e for e in events if e.get("event") == "tick"), key=lambda e: float(e["ts"])):
        for name, item in (ev.get("probes") or {}).items():
            if isinstance(item, dict):
                out.setdefault(name, []).append((float(ev["ts"]), _int(item.get("ops")) or 0))
    return out


def _failovers(evs: List[Dict[str, Any]]) -> List[LabFailover]:
    out = []  # type: List[LabFailover]
    current = None  # type: Optional[Dict[str, Any]]
    for ev in evs:
        if ev.get("event") != "lab":
            continue
        step, ts = str(ev.get("step") or ""), float(ev["ts"])
        if step == "start" or current is None:
            if current is not None:
                out.append(_close_failover(current))
            current = {"target": str(ev.get("target") or ""), "crash": bool(ev.get("crash")), "started": ts,
                       "outage_start": _float(ev.get("outage_start")), "outage_end": None, "steps": []}
        current["steps"].append((ts, step, str(ev.get("detail") or "")))
        current["crash"] = current["crash"] or bool(ev.get("crash"))
        if current["outage_start"] is None:
            current["outage_start"] = _float(ev.get("outage_start"))
        if step == "done":
            current["outage_end"] = _float(ev.get("outage_end"))
            out.append(_close_failover(current))
            current = None
    if current is not None:
        out.append(_close_failover(current))
    return out


def _close_failover(data: Dict[str, Any]) -> LabFailover:
    return LabFailover(target=data["target"], crash=data["crash"], started=data["started"],
                       outage_start=data["outage_start"], outage_end=data["outage_end"],
                       steps=tuple(data["steps"]))


def _failover_for(failovers: Sequence[LabFailover], endpoint: str, endpoints: Sequence[str]) -> Optional[LabFailover]:
    mine = [f for f in failovers if f.target == endpoint]
    if not mine and len(set(endpoints)) == 1:
        mine = list(failovers)  # one endpoint in the run: the failover is its own
    return mine[-1] if mine else None


def _dns_changes(evs: List[Dict[str, Any]]) -> List[DnsChange]:
    by_endpoint = {}  # type: Dict[str, List[Dict[str, Any]]]
    for ev in evs:
        if ev.get("event") == "dns" and ev.get("endpoint"):
            by_endpoint.setdefault(str(ev["endpoint"]), []).append(ev)
    out = []
    for endpoint, items in by_endpoint.items():
        watcher = [e for e in items if not e.get("probe")]
        items = watcher or items  # the DNS watcher's view when there is one
        initial = ()  # type: Tuple[str, ...]
        first_prev = tuple(items[0].get("previous") or ())
        if first_prev:
            initial = first_prev
        flip_at = empty_at = None  # type: Optional[float]
        flipped_to = ()  # type: Tuple[str, ...]
        flaps = 0
        last = first_prev
        for ev in items:
            answer = tuple(ev.get("addresses") or ())
            ts = float(ev["ts"])
            if not answer:
                if initial and empty_at is None:
                    empty_at = ts
            elif not initial:
                initial = answer
            elif flip_at is None and set(answer) != set(initial):
                flip_at, flipped_to = ts, answer
            elif flip_at is not None and set(answer) == set(initial) and set(last) != set(initial):
                flaps += 1
            if answer:
                last = answer
        out.append(DnsChange(endpoint=endpoint, initial=initial, flipped_to=flipped_to, flip_at=flip_at,
                             empty_at=empty_at, changes=max(0, len(items) - (0 if first_prev else 1)),
                             flaps=flaps))
    return out


def _markers(evs: List[Dict[str, Any]], dns: List[DnsChange]) -> List[Marker]:
    out = []
    for ev in evs:
        kind, ts = ev.get("event"), float(ev["ts"])
        if kind == "lab":
            target, step = str(ev.get("target") or ""), str(ev.get("step") or "")
            out.append(Marker(ts, "lab", "%s %s" % (target, step), target, step))
        elif kind == "experiment":
            target, state = str(ev.get("target") or ""), str(ev.get("state") or "")
            out.append(Marker(ts, "fis", "FIS %s %s" % (target, state), target, "FIS " + state))
        elif kind == "topology":
            lines = ev.get("lines") or []
            endpoint = str(ev.get("endpoint") or "")
            out.append(Marker(ts, "topology", "%s: %s" % (endpoint, lines[0] if lines else "changed"), endpoint,
                              "topology"))
    for item in dns:
        if item.flip_at is not None:
            out.append(Marker(item.flip_at, "dns", "%s DNS flip" % item.endpoint, item.endpoint, "DNS flip"))
    return sorted(out, key=lambda m: m.ts)


# ----------------------------------------------------------------------------- rendering


def _t(report: Report, ts: Optional[float]) -> str:
    return "-" if ts is None else "t+%.1f" % (ts - report.start)


def _secs(value: Optional[float]) -> str:
    return "-" if value is None else "%.1fs" % value


def _gap_text(report: Report, gap: Gap) -> str:
    if gap.open and gap.from_start:
        return "never wrote (faults from the start, %d err)" % gap.errors
    if gap.open:
        return "%s.. never recovered (%.1fs so far)" % (_t(report, gap.start), gap.duration)
    extra = [] if gap.anchored else ["silent"]
    if gap.errors:
        extra.append("%d err" % gap.errors)
    if gap.in_doubt:
        extra.append("%d in doubt" % gap.in_doubt)
    return "%s..%s %.1fs%s" % (_t(report, gap.start), _t(report, gap.end), gap.duration,
                               " (%s)" % ", ".join(extra) if extra else "")


def _window_text(report: Report, win: Window) -> str:
    if win.open:
        return "%s.. still stalled at the end (%.1fs)" % (_t(report, win.start), win.duration)
    return "%s..%s %.1fs" % (_t(report, win.start), _t(report, win.end), win.duration)


def _headline(report: Report) -> List[str]:
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(report.start)) if report.start else "?"
    lines = ["Run of %.1fs from %s, %d probe(s)%s" % (report.duration, when, len(report.probes),
                                                    "" if report.complete else " (incomplete)")]
    for fo in report.failovers:
        if fo.outage is not None:
            lines.append("Lab failover %s%s: outage %s..%s (%.1fs injected)" % (
                fo.target, " (crash)" if fo.crash else "", _t(report, fo.outage_start),
                _t(report, fo.outage_end), fo.outage))
        else:
            lines.append("Lab failover %s%s started %s, not finished" % (
                fo.target, " (crash)" if fo.crash else "", _t(report, fo.started)))
    for item in report.dns:
        if item.flip_at is not None:
            text = "DNS %s: %s -> %s at %s" % (item.endpoint, ",".join(item.initial), ",".join(item.flipped_to),
                                               _t(report, item.flip_at))
            if item.empty_at is not None and item.empty_at < item.flip_at:
                text += ", empty from %s" % _t(report, item.empty_at)
            if item.flaps:
                text += ", %d flap(s) back" % item.flaps
            lines.append(text)
        elif item.initial:
            lines.append("DNS %s: %s, no flip seen" % (item.endpoint, ",".join(item.initial)))
    last = {}  # type: Dict[str, Tuple[float, str]]
    for ts, endpoint, verdict in report.verified:
        last[endpoint] = (ts, verdict)
    for endpoint, (ts, verdict) in last.items():
        lines.append("Writes %s (verified %s): %s" % (endpoint, _t(report, ts), verdict))
    return lines


def render_text(report: Report) -> str:
    """The full report: headline, failover steps, then a block per probe."""
    lines = _headline(report)
    for fo in report.failovers:
        if fo.steps:
            lines.append("  steps: " + "  ".join("%s %s" % (_t(report, ts), step) for ts, step, _ in fo.steps))
    for note in report.notes:
        lines.append("note: %s" % note)
    for p in report.probes:
        lines.append("")
        lib = " (%s %s)" % (p.library, p.version) if p.library else ""
        lines.append("%s%s%s" % (p.probe, lib, "" if p.available else " - unavailable"))
        kinds = ", ".join("%s x%d" % kv for kv in p.errors_by_kind)
        lines.append("  ops %d, errors %d%s, final state %s" % (p.ops, p.errors, " (%s)" % kinds if kinds else "",
                                                             p.final_state or "-"))
        lines.append("  writes: %d acknowledged, %d in doubt" % (p.acknowledged, p.in_doubt))
        if p.write_gaps:
            lines.append("  write gaps: " + "; ".join(_gap_text(report, g) for g in p.write_gaps[:6])
                         + (" (+%d more)" % (len(p.write_gaps) - 6) if len(p.write_gaps) > 6 else ""))
        else:
            lines.append("  write gaps: none")
        if p.outage_gap is not None:
            if p.beyond_outage is None:
                lines.append("  vs injected outage: never recovered")
            else:
                lines.append("  vs injected outage: writes resumed %.1fs after it ended" % p.beyond_outage)
        lines.append("  stalls: " + ("; ".join(_window_text(report, w) for w in p.stalls[:6]) or "none"))
        if p.address_before or p.address_after:
            moved = p.address_before != p.address_after
            lines.append("  address: %s%s" % (p.address_before, " -> %s" % p.address_after if moved else " (unchanged)"))
        if p.latency_ms_mean is not None:
            lines.append("  latency: mean %.1f ms, worst second %.1f ms" % (p.latency_ms_mean, p.latency_ms_worst or 0))
    return "\n".join(lines) + "\n"


def _probe_cells(report: Report, p: ProbeReport) -> List[str]:
    gap = p.longest_gap
    stall = p.longest_stall
    if gap is None:
        gap_cell = "-"
    elif gap.open and gap.from_start:
        gap_cell = "never wrote"
    elif gap.open:
        gap_cell = "never recovered (from %s)" % _t(report, gap.start)
    else:
        gap_cell = "%.1fs at %s" % (gap.duration, _t(report, gap.start))
    beyond = "-" if p.outage_gap is None else ("never" if p.beyond_outage is None else "%+.1fs" % p.beyond_outage)
    stall_cell = "-" if stall is None else ("%.1fs (open)" % stall.duration if stall.open else "%.1fs" % stall.duration)
    kinds = ", ".join("%s x%d" % kv for kv in p.errors_by_kind) or "-"
    addr = "-" if not p.address_before else (
        p.address_before if p.address_before == p.address_after else "%s -> %s" % (p.address_before, p.address_after))
    return [p.probe, str(p.ops), "%d" % p.errors, kinds, gap_cell, beyond, stall_cell, addr]


def render_markdown(report: Report) -> str:
    lines = ["# fiswatch report", ""]
    lines += ["- %s" % line for line in _headline(report)]
    for note in report.notes:
        lines.append("- note: %s" % note)
    lines += ["", "| probe | ops | errors | errors by kind | longest write gap | beyond outage | longest stall | address |",
              "|---|---:|---:|---|---|---:|---:|---|"]
    for p in report.probes:
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in _probe_cells(report, p)) + " |")
    steps = [(ts, "%s %s" % (fo.target, step), detail) for fo in report.failovers for ts, step, detail in fo.steps]
    if steps:
        lines += ["", "Failover steps:", ""]
        lines += ["- %s %s%s" % (_t(report, ts), what, " - %s" % detail if detail else "") for ts, what, detail in steps]
    for p in report.probes:
        if p.write_gaps or p.stalls:
            lines += ["", "**%s**: write gaps %s; stalls %s" % (
                p.probe, "; ".join(_gap_text(report, g) for g in p.write_gaps) or "none",
                "; ".join(_window_text(report, w) for w in p.stalls) or "none")]
    return "\n".join(lines) + "\n"


def report_as_dict(report: Report) -> Dict[str, Any]:
    """JSON-ready: absolute `ts` values plus `t` (seconds from the run start)."""

    def rel(ts: Optional[float]) -> Optional[float]:
        return None if ts is None else round(ts - report.start, 3)

    def gap(g: Gap) -> Dict[str, Any]:
        return {"start": round(g.start, 3), "end": round(g.end, 3), "t_start": rel(g.start), "t_end": rel(g.end),
                "duration_s": round(g.duration, 3), "open": g.open, "anchored": g.anchored,
                "errors": g.errors, "in_doubt": g.in_doubt, "from_start": g.from_start}

    def win(w: Window) -> Dict[str, Any]:
        return {"start": round(w.start, 3), "end": round(w.end, 3), "t_start": rel(w.start), "t_end": rel(w.end),
                "duration_s": round(w.duration, 3), "open": w.open}

    probes = []
    for p in report.probes:
        probes.append({
            "probe": p.probe, "endpoint": p.endpoint, "backend": p.backend, "library": p.library,
            "version": p.version, "available": p.available, "ops": p.ops, "acknowledged": p.acknowledged,
            "in_doubt": p.in_doubt, "errors": p.errors, "errors_by_kind": dict(p.errors_by_kind),
            "stalls": [win(w) for w in p.stalls],
            "longest_stall_s": round(p.longest_stall.duration, 3) if p.longest_stall else None,
            "write_gaps": [gap(g) for g in p.write_gaps],
            "longest_gap_s": round(p.longest_gap.duration, 3) if p.longest_gap else None,
            "recovered": p.recovered, "address_before": p.address_before, "address_after": p.address_after,
            "final_state": p.final_state, "latency_ms_mean": p.latency_ms_mean,
            "latency_ms_worst": p.latency_ms_worst,
            "outage_gap": gap(p.outage_gap) if p.outage_gap else None,
            "beyond_outage_s": None if p.beyond_outage is None else round(p.beyond_outage, 3)})
    return {
        "start": round(report.start, 3), "end": round(report.end, 3), "duration_s": round(report.duration, 3),
        "complete": report.complete, "notes": list(report.notes), "probes": probes,
        "dns": [{"endpoint": d.endpoint, "initial": list(d.initial), "flipped_to": list(d.flipped_to),
                 "flip_at": d.flip_at, "t_flip": rel(d.flip_at), "empty_at": d.empty_at, "t_empty": rel(d.empty_at),
                 "changes": d.changes, "flaps": d.flaps} for d in report.dns],
        "failovers": [{"target": f.target, "crash": f.crash, "started": f.started,
                       "outage_start": f.outage_start, "outage_end": f.outage_end,
                       "t_outage_start": rel(f.outage_start), "t_outage_end": rel(f.outage_end),
                       "outage_s": None if f.outage is None else round(f.outage, 3),
                       "steps": [{"ts": ts, "t": rel(ts), "step": s, "detail": d} for ts, s, d in f.steps]}
                      for f in report.failovers],
        "verified": [{"ts": ts, "t": rel(ts), "endpoint": ep, "verdict": v} for ts, ep, v in report.verified],
        "markers": [{"ts": m.ts, "t": rel(m.ts), "kind": m.kind, "text": m.text} for m in report.markers],
    }


def summary_lines(report: Report, width: int = 80) -> List[str]:
    """A few lines for the end of `watch`: the run, then one line per probe."""
    lines = _headline(report)
    name_w = min(max([len(p.probe) for p in report.probes] + [5]), 28)
    for p in report.probes:
        if not p.available:
            lines.append("%-*s unavailable" % (name_w, p.probe))
            continue
        gap = p.longest_gap
        if gap is not None and gap.open and gap.from_start:
            verdict = "NEVER WROTE (%s)" % (p.errors_by_kind[0][0] if p.errors_by_kind else "no write")
        elif gap is not None and gap.open:
            verdict = "NEVER RECOVERED from %s" % _t(report, gap.start)
        elif gap is not None:
            verdict = "gap %.1fs" % gap.duration
            if p.beyond_outage is not None:
                verdict += " (%+.1fs vs outage)" % p.beyond_outage
        else:
            verdict = "no write gap"
        line = "%-*s %6d ops %3d err  %s" % (name_w, p.probe, p.ops, p.errors, verdict)
        stall = p.longest_stall
        optional = []
        if stall is not None and not (gap is not None and gap.open and stall.open):
            optional.append("stall %.1fs" % stall.duration)
        if p.address_before and p.address_after and p.address_before != p.address_after:
            optional.append("%s->%s" % (p.address_before, p.address_after))
        for part in optional:  # only what fits: the verdict matters most
            if len(line) + 2 + len(part) <= width:
                line += "  " + part
        lines.append(line)
    return [_fit(line, width) for line in lines]


def _fit(line: str, width: int) -> str:
    return line if len(line) <= width else line[:max(1, width - 1)] + "~"
