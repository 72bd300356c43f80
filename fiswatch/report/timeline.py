"""Run-wide facts from the events: lab failovers, DNS changes, timeline markers, ops/s series."""
from typing import Any, Dict, Iterable, List, Optional, Tuple

from fiswatch.report.coerce import as_float, as_int
from fiswatch.report.model import DnsChange, LabFailover, Marker


def tick_series(evs: List[Dict[str, Any]], name: str) -> List[Tuple[float, int, Optional[float]]]:
    out = []
    for ev in evs:
        if ev.get("event") != "tick" or not isinstance(ev.get("probes"), dict):
            continue
        item = ev["probes"].get(name)
        if isinstance(item, dict):
            out.append((float(ev["ts"]), as_int(item.get("ops")) or 0, as_float(item.get("latency_ms"))))
    return out


def ops_series(events: Iterable[Dict[str, Any]]) -> Dict[str, List[Tuple[float, int]]]:
    """probe -> [(ts, ops in that second)] from `tick` events, for the timeline."""
    out = {}  # type: Dict[str, List[Tuple[float, int]]]
    for ev in sorted((e for e in events if e.get("event") == "tick"), key=lambda e: float(e["ts"])):
        for name, item in (ev.get("probes") or {}).items():
            if isinstance(item, dict):
                out.setdefault(name, []).append((float(ev["ts"]), as_int(item.get("ops")) or 0))
    return out


def lab_failovers(evs: List[Dict[str, Any]]) -> List[LabFailover]:
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
                       "outage_start": as_float(ev.get("outage_start")), "outage_end": None, "steps": []}
        current["steps"].append((ts, step, str(ev.get("detail") or "")))
        current["crash"] = current["crash"] or bool(ev.get("crash"))
        if current["outage_start"] is None:
            current["outage_start"] = as_float(ev.get("outage_start"))
        if step == "done":
            current["outage_end"] = as_float(ev.get("outage_end"))
            out.append(_close_failover(current))
            current = None
    if current is not None:
        out.append(_close_failover(current))
    return out


def _close_failover(data: Dict[str, Any]) -> LabFailover:
    return LabFailover(target=data["target"], crash=data["crash"], started=data["started"],
                       outage_start=data["outage_start"], outage_end=data["outage_end"],
                       steps=tuple(data["steps"]))


def dns_changes(evs: List[Dict[str, Any]]) -> List[DnsChange]:
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


def timeline_markers(evs: List[Dict[str, Any]], dns: List[DnsChange]) -> List[Marker]:
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
