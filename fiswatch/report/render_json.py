"""The report as a JSON-ready dict (`fiswatch report --format json`)."""
from typing import Any, Dict, Optional

from fiswatch.report.model import Gap, Report, Window
from fiswatch.report.render_text import report_reason


def report_as_dict(report: Report) -> Dict[str, Any]:
    """JSON-ready: absolute `ts` values plus `t` (seconds from the run start)."""

    def rel(ts: Optional[float]) -> Optional[float]:
        return None if ts is None else round(ts - report.start, 3)

    def gap(g: Gap) -> Dict[str, Any]:
        return {"start": round(g.start, 3), "end": round(g.end, 3), "t_start": rel(g.start), "t_end": rel(g.end),
                "duration_s": round(g.duration, 3), "open": g.open, "anchored": g.anchored,
                "errors": g.errors, "in_doubt": g.in_doubt, "from_start": g.from_start,
                "span_s": round(g.span, 3), "paused_s": round(g.paused, 3)}

    def win(w: Window) -> Dict[str, Any]:
        return {"start": round(w.start, 3), "end": round(w.end, 3), "t_start": rel(w.start), "t_end": rel(w.end),
                "duration_s": round(w.duration, 3), "open": w.open}

    probes = []
    for p in report.probes:
        probes.append({
            "probe": p.probe, "endpoint": p.endpoint, "backend": p.backend, "library": p.library,
            "version": p.version, "available": p.available, "reads": p.reads, "ops": p.ops,
            "acknowledged": p.acknowledged,
            "in_doubt": p.in_doubt, "errors": p.errors, "errors_by_kind": dict(p.errors_by_kind),
            "rolled_back": p.rolled_back, "rolled_back_writes": p.rolled_back_writes,
            "stalls": [win(w) for w in p.stalls],
            "longest_stall_s": round(p.longest_stall.duration, 3) if p.longest_stall else None,
            "write_gaps": [gap(g) for g in p.write_gaps],
            "longest_gap_s": round(p.longest_gap.duration, 3) if p.longest_gap else None,
            "recovered": p.recovered, "address_before": p.address_before, "address_after": p.address_after,
            "addresses": list(p.addresses),
            "final_state": p.final_state, "latency_ms_mean": p.latency_ms_mean,
            "latency_ms_worst": p.latency_ms_worst,
            "outage_gap": gap(p.outage_gap) if p.outage_gap else None,
            "beyond_outage_s": None if p.beyond_outage is None else round(p.beyond_outage, 3),
            "outages": [{"failover": o.number, "target": o.failover.target,
                         "gap": gap(o.gap) if o.gap is not None else None,
                         "beyond_outage_s": None if o.beyond is None else round(o.beyond, 3),
                         "into_next": o.into_next, "paused_after_s": round(o.paused_after, 3)}
                        for o in p.outages]})
    return {
        "start": round(report.start, 3), "end": round(report.end, 3), "duration_s": round(report.duration, 3),
        "complete": report.complete, "notes": list(report.notes), "probes": probes,
        "dns": [{"endpoint": d.endpoint, "initial": list(d.initial), "flipped_to": list(d.flipped_to),
                 "flip_at": d.flip_at, "t_flip": rel(d.flip_at), "empty_at": d.empty_at, "t_empty": rel(d.empty_at),
                 "changes": d.changes, "flaps": d.flaps,
                 "flips": [{"ts": ts, "t": rel(ts), "from": list(a), "to": list(b)} for ts, a, b in d.flips]}
                for d in report.dns],
        "pauses": [win(w) for w in report.pauses],
        "failovers": [{"number": n, "target": f.target, "kind": f.kind, "crash": f.crash, "started": f.started,
                       "outage_start": f.outage_start, "outage_end": f.outage_end,
                       "t_outage_start": rel(f.outage_start), "t_outage_end": rel(f.outage_end),
                       "outage_s": None if f.outage is None else round(f.outage, 3),
                       "steps": [{"ts": ts, "t": rel(ts), "step": s, "detail": d} for ts, s, d in f.steps]}
                      for n, f in enumerate(report.failovers, 1)],
        "verified": [{"ts": ts, "t": rel(ts), "endpoint": ep, "verdict": v} for ts, ep, v in report.verified],
        "verify_warnings": [{"endpoint": ep, "warning": w} for ep, w in report.verify_caveats],
        "writes": [{"endpoint": w.endpoint, "acknowledged": w.acknowledged, "verified": w.verified,
                    "not_verified": w.unverified, "verified_at": None if w.check is None else w.check.ts,
                    "verdict": None if w.check is None else w.check.verdict,
                    "not_verified_from": w.unverified_from, "t_not_verified_from": rel(w.unverified_from),
                    "last_write": w.last_ts, "t_last_write": rel(w.last_ts),
                    "why_not_verified": (w.reason or report_reason(report, w.endpoint)
                                         or ("no check ran" if w.check is None else None))
                    if w.unverified else None}
                   for w in report.writes],
        "runs": report.runs, "run": report.run,
        "markers": [{"ts": m.ts, "t": rel(m.ts), "kind": m.kind, "text": m.text} for m in report.markers],
    }
