"""Run-wide facts from the events: lab failovers, pause windows, DNS changes, markers, ops/s series.

Every function takes events already filtered by coerce.timed (dicts with a float `ts`, sorted);
other fields may have any type.
"""
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from fiswatch import events as E
from fiswatch.report.coerce import as_addresses, as_dict, as_float, as_int, as_list, as_text, timed
from fiswatch.report.model import DnsChange, LabFailover, Marker, Window

FLAP_WINDOW = 10.0  # seconds: an answer back to the pre-flip one this soon after a change is a flap


# ----------------------------------------------------------------------------- windows


def overlap(windows: Sequence[Window], lo: float, hi: float) -> float:
    """Seconds of [lo, hi] covered by `windows` (which do not overlap each other)."""
    return sum(max(0.0, min(hi, w.end) - max(lo, w.start)) for w in windows)


def subtract(windows: Sequence[Window], holes: Sequence[Window]) -> List[Window]:
    """`windows` with the time of `holes` cut out (both sorted, non-overlapping)."""
    out: List[Window] = []
    for win in windows:
        pieces = [(win.start, win.end)]
        for hole in holes:
            nxt = []
            for lo, hi in pieces:
                if hole.end <= lo or hole.start >= hi:
                    nxt.append((lo, hi))
                    continue
                if hole.start > lo:
                    nxt.append((lo, hole.start))
                if hole.end < hi:
                    nxt.append((hole.end, hi))
            pieces = nxt
        out.extend(Window(lo, hi, open=win.open and hi == win.end) for lo, hi in pieces if hi > lo)
    return out


def pause_windows(evs: List[Dict[str, Any]], end: float) -> List[Window]:
    """When the dashboard was paused (key p): from `pause` to `resume`, or to `end` if never resumed.

    Runs since the report package record an `info` event with `pause: true|false`; older
    records only the message "paused" / "resumed", which is understood too.
    """
    out = []
    began = None  # type: Optional[float]
    for ev in evs:
        if ev.get("event") != E.INFO:
            continue
        flag = ev.get("pause")
        if not isinstance(flag, bool):
            message = ev.get("message")
            flag = True if message == "paused" else False if message == "resumed" else None
        if flag is True and began is None:
            began = ev["ts"]
        elif flag is False and began is not None:
            out.append(Window(began, max(began, ev["ts"])))
            began = None
    if began is not None:
        out.append(Window(began, max(began, end), open=True))
    return out


# ----------------------------------------------------------------------------- ops/s


def ops_series(events: Iterable[Dict[str, Any]]) -> Dict[str, List[Tuple[float, int]]]:
    """probe -> [(ts, ops in that second)] from `tick` events, for the timeline."""
    out = {}  # type: Dict[str, List[Tuple[float, int]]]
    evs, _ = timed(events)
    for ev in evs:
        if ev["event"] != E.TICK:
            continue
        for name, item in as_dict(ev.get("probes")).items():
            if isinstance(item, dict):
                out.setdefault(name, []).append((ev["ts"], max(0, as_int(item.get("ops")) or 0)))
    return out


# ----------------------------------------------------------------------------- lab failovers


def lab_failovers(evs: List[Dict[str, Any]]) -> List[LabFailover]:
    """One LabFailover per `start` step (per target), closed by its `done` step; in start order."""
    out = []  # type: List[Dict[str, Any]]
    current = {}  # type: Dict[str, Dict[str, Any]]  # target -> the failover still running
    for ev in evs:
        if ev.get("event") != E.LAB:
            continue
        step, ts, target = as_text(ev.get("step")), ev["ts"], as_text(ev.get("target"))
        data = current.get(target)
        if step == "start" or data is None:
            data = {"target": target, "crash": False, "started": ts, "outage_start": None,
                    "outage_end": None, "steps": [], "kind": as_text(ev.get("outage") or "failover")}
            current[target] = data
            out.append(data)
        data["steps"].append((ts, step, as_text(ev.get("detail"))))
        data["crash"] = data["crash"] or ev.get("crash") is True
        if data["outage_start"] is None:
            data["outage_start"] = as_float(ev.get("outage_start"))
        if step == "done":
            data["outage_end"] = as_float(ev.get("outage_end"))
            current.pop(target, None)
    return [LabFailover(target=d["target"], crash=d["crash"], started=d["started"], outage_start=d["outage_start"],
                        outage_end=d["outage_end"], steps=tuple(d["steps"]), kind=d["kind"]) for d in out]


# ----------------------------------------------------------------------------- DNS


def dns_changes(evs: List[Dict[str, Any]], failovers: Sequence[LabFailover] = ()) -> List[DnsChange]:
    by_endpoint = {}  # type: Dict[str, List[Dict[str, Any]]]
    for ev in evs:
        if ev.get("event") == E.DNS and ev.get("endpoint"):
            by_endpoint.setdefault(as_text(ev["endpoint"]), []).append(ev)
    return [_dns_change(endpoint, items, [f for f in failovers if f.target == endpoint])
            for endpoint, items in by_endpoint.items()]


def _dns_change(endpoint: str, items: List[Dict[str, Any]], failovers: Sequence[LabFailover]) -> DnsChange:
    watcher = [e for e in items if not e.get("probe")]
    items = watcher or items  # the DNS watcher's view when there is one
    first_prev = as_addresses(items[0].get("previous"))
    initial = first_prev  # type: Tuple[str, ...]
    empty_at = None  # type: Optional[float]
    flips = []  # type: List[Tuple[float, Tuple[str, ...], Tuple[str, ...]]]
    flaps = 0
    current = first_prev
    last_change = None  # type: Optional[float]
    flap_windows = [_flap_window(f) for f in failovers]
    starts = sorted(f.started for f in failovers)
    for ev in items:
        answer, ts = as_addresses(ev.get("addresses")), ev["ts"]
        if not answer:
            if initial and empty_at is None:
                empty_at = ts
            continue
        if not initial:
            initial = current = answer
            continue
        if set(answer) == set(current):
            continue
        if flips and set(answer) == set(flips[-1][1]) and _settling(ts, last_change, flips[-1][0], flap_windows,
                                                                    starts):
            flaps += 1  # back to the answer before the latest flip, while the DNS settles
        elif flips and set(answer) == set(flips[-1][2]):
            pass  # back to the flip's answer after a flap
        else:
            flips.append((ts, current, answer))
        current, last_change = answer, ts
    first = flips[0] if flips else None
    return DnsChange(endpoint=endpoint, initial=initial, flipped_to=first[2] if first else (),
                     flip_at=first[0] if first else None, empty_at=empty_at,
                     changes=max(0, len(items) - (0 if first_prev else 1)), flaps=flaps, flips=tuple(flips))


def _flap_window(failover: LabFailover) -> Tuple[float, float]:
    """From the lab's `dns_flap` step to the failover's end (none: an empty window)."""
    flap = next((ts for ts, step, _ in failover.steps if step == "dns_flap"), None)
    if flap is None:
        return (0.0, -1.0)
    ends = [ts for ts, step, _ in failover.steps if step == "done"]
    return (flap, ends[0] if ends else float("inf"))


def _settling(ts: float, last_change: Optional[float], flip_ts: float, flap_windows: Sequence[Tuple[float, float]],
              starts: Sequence[float]) -> bool:
    if any(lo <= ts <= hi for lo, hi in flap_windows):
        return True
    if any(flip_ts < start <= ts for start in starts):
        return False  # a new failover started since the latest flip: this is its flip
    return last_change is not None and ts - last_change <= FLAP_WINDOW


# ----------------------------------------------------------------------------- markers


def timeline_markers(evs: List[Dict[str, Any]], dns: List[DnsChange], pauses: Sequence[Window] = ()) -> List[Marker]:
    out = []
    for ev in evs:
        kind, ts = ev.get("event"), ev["ts"]
        if kind == E.LAB:
            target, step = as_text(ev.get("target")), as_text(ev.get("step"))
            out.append(Marker(ts, "lab", "%s %s" % (target, step), target, step))
        elif kind == E.EXPERIMENT:
            target, state = as_text(ev.get("target")), as_text(ev.get("state"))
            out.append(Marker(ts, "fis", "FIS %s %s" % (target, state), target, "FIS " + state))
        elif kind == E.TOPOLOGY:
            lines = as_list(ev.get("lines"))
            endpoint = as_text(ev.get("endpoint"))
            out.append(Marker(ts, "topology", "%s: %s" % (endpoint, as_text(lines[0]) if lines else "changed"),
                              endpoint, "topology"))
    for item in dns:
        for n, (ts, _, to) in enumerate(item.flips, 1):
            label = "DNS flip" if n == 1 else "DNS flip %d" % n
            out.append(Marker(ts, "dns", "%s %s -> %s" % (item.endpoint, label, ",".join(to)), item.endpoint, label))
    for win in pauses:
        out.append(Marker(win.start, "pause", "paused", "", "paused"))
        if not win.open:
            out.append(Marker(win.end, "pause", "resumed", "", "resumed"))
    return sorted(out, key=lambda m: m.ts)
