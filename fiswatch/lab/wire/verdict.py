"""A program's verdict from the lab's wire accounting, by the report's own code (report/build, failover_table). Pure.

The lab's ledger (accounting.py) files clients by process. `program_clients` picks the processes
of one program (its PID and every process whose ancestors include it); `merge` folds them into
one client per endpoint; `program_events` turns that and the lab's failover steps into record
events (`run_start`, `wire_client`, `lab`, `run_stop`), so `build_report` computes the program's
gaps and failover pairs exactly as it does the probes', and `failover_table.failover_verdict`
classes them (at promotion / at the DNS change / on a demoted writer / hung).
"""
from typing import Any, Dict, Iterable, List, Optional, Sequence

from fiswatch import events as E
from fiswatch.lab.wire.accounting import GAP_MIN

PROGRAM = "program"


def program_clients(snapshot: Dict[str, Any], root_pid: int) -> List[Dict[str, Any]]:
    """The clients that are root_pid or one of its descendants (forked children included)."""
    return [c for c in snapshot.get("clients", ())
            if c.get("pid") == root_pid or root_pid in (c.get("ancestors") or ())]


def merge(clients: Sequence[Dict[str, Any]], gap_min: float = GAP_MIN) -> Dict[str, Dict[str, Any]]:
    """endpoint -> one client: segments united, counts summed, the latest error and refusal kept.

    >>> a = {"endpoints": {"aurora": {"acked": 2, "segments": [[1.0, 2.0]], "errors": {"2013": 1},
    ...      "last_error": [2013, 2.5], "refused": 0, "last_refused": None}}}
    >>> b = {"endpoints": {"aurora": {"acked": 1, "segments": [[2.1, 3.0], [9.0, 9.0]], "errors": {},
    ...      "last_error": None, "refused": 1, "last_refused": 8.0}}}
    >>> m = merge([a, b])["aurora"]
    >>> m["segments"], m["acked"], m["errors"], m["last_refused"]
    ([[1.0, 3.0], [9.0, 9.0]], 3, {'2013': 1}, 8.0)
    """
    out: Dict[str, Dict[str, Any]] = {}
    for client in clients:
        for endpoint, track in (client.get("endpoints") or {}).items():
            m = out.setdefault(endpoint, {"acked": 0, "segments": [], "errors": {}, "last_error": None,
                                          "refused": 0, "last_refused": None, "dropped": 0,
                                          "last_dropped": None, "faults": [], "rolled_back": 0,
                                          "rolled_back_writes": 0})
            m["acked"] += track.get("acked", 0)
            m["segments"].extend([list(s) for s in track.get("segments", ())])
            for code, n in (track.get("errors") or {}).items():
                m["errors"][code] = m["errors"].get(code, 0) + n
            if track.get("last_error") and (m["last_error"] is None or track["last_error"][1] > m["last_error"][1]):
                m["last_error"] = list(track["last_error"])
            m["refused"] += track.get("refused", 0)
            if track.get("last_refused") is not None:
                m["last_refused"] = max(m["last_refused"] or 0.0, track["last_refused"])
            m["dropped"] += track.get("dropped", 0)
            m["rolled_back"] += track.get("rolled_back", 0)
            m["rolled_back_writes"] += track.get("rolled_back_writes", 0)
            m["faults"].extend(track.get("faults", ()))
            if track.get("last_dropped") is not None:
                m["last_dropped"] = max(m["last_dropped"] or 0.0, track["last_dropped"])
    for m in out.values():
        m["segments"] = _union(m["segments"], gap_min)
        m["faults"] = sorted(m["faults"])[-4096:]
    return out


def _union(segments: List[List[float]], gap_min: float) -> List[List[float]]:
    merged: List[List[float]] = []
    for start, end in sorted(segments):
        if merged and start - merged[-1][1] < gap_min:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return merged


def program_events(name: str, merged: Dict[str, Dict[str, Any]], lab_events: Iterable[Dict[str, Any]],
                   start: float, end: float, gap_min: float = GAP_MIN) -> List[Dict[str, Any]]:
    """Record events for `fiswatch report` and build_report: the program as a probe per endpoint."""
    probes = [{"probe": "%s/%s" % (endpoint, PROGRAM), "endpoint": endpoint, "backend": name,
               "library": "wire", "version": "lab proxies", "available": True} for endpoint in sorted(merged)]
    events: List[Dict[str, Any]] = [{"ts": start, "event": E.RUN_START, "probes": probes, "source": "lab exec"}]
    for endpoint in sorted(merged):
        m = merged[endpoint]
        events.append(dict(m, ts=end, event=E.WIRE_CLIENT, probe="%s/%s" % (endpoint, PROGRAM), endpoint=endpoint,
                           backend=name, gap_min=gap_min))
    events.extend(lab_events)
    events.append({"ts": end, "event": E.RUN_STOP})
    events.append({"ts": end, "event": E.SUMMARY, "probes": {
        # no "errors" here: build_report adds the wire_client's own (else every error counted twice)
        "%s/%s" % (e, PROGRAM): {"ops": merged[e]["acked"], "state": final_state(merged[e], end, gap_min)}
        for e in merged}})
    return events


def final_state(track: Dict[str, Any], end: float, gap_min: float = GAP_MIN) -> str:
    """OK when the program was still writing at the end, else what the wire last saw.

    >>> final_state({"segments": [[1.0, 9.9]]}, 10.0), final_state({"segments": [[1.0, 3.0]]}, 10.0)
    ('OK', 'NO WRITE')
    """
    segments = track.get("segments") or []
    if segments and end - segments[-1][1] <= max(1.0, 10 * gap_min):
        return "OK"
    if track.get("last_refused") is not None and (not segments or track["last_refused"] > segments[-1][1]):
        return "REFUSED"
    return "NO WRITE"


def describe(report: Any, lost: Optional[Dict[str, Any]] = None,
             refused: Optional[Dict[str, int]] = None) -> List[str]:
    """The verdict as a few lines: per endpoint, each failover's class and gap; then lost writes.

    `refused`: endpoint -> writes refused by a read-only server (1290/1836), said when any.
    """
    from fiswatch.report.failover_table import failover_verdict

    lines = []
    for probe in report.probes:
        head = "%s on %s: %d acknowledged writes, %d server errors" % (
            probe.backend, probe.endpoint, probe.acknowledged, probe.errors)
        if (refused or {}).get(probe.endpoint):
            head += ", %d writes refused 1290/1836 by a read-only server" % refused[probe.endpoint]  # type: ignore[index]
        if probe.rolled_back:
            head += ", " + probe.rolled_back_text
        lines.append(head)
        for pair in probe.outages:
            if pair.failover.target != probe.endpoint:  # another endpoint's failover: not this one's outage
                continue
            cls, detail = failover_verdict(report, probe, pair.failover)
            lines.append("  failover %d (%s at t+%.1f): %s%s" % (
                pair.number, pair.failover.target, pair.failover.started - report.start, cls,
                ", " + detail if detail else ""))
    if lost is not None:
        lines.extend(lost_lines(lost))
    return lines


def lost_lines(lost: Dict[str, Any]) -> List[str]:
    lines = []
    if lost.get("error"):
        lines.append("lost writes: not verified (%s)" % lost["error"])
    else:
        ids = lost.get("lost", [])
        text = "lost writes: %d of %d acknowledged inserts checked on the current writers" % (len(ids), lost.get("checked", 0))
        if ids:
            text += ": LOST " + ", ".join("%s id %s" % (t, i) for t, i in ids[:10]) + (" ..." if len(ids) > 10 else "")
        lines.append(text)
    for why, n in sorted((lost.get("unverifiable") or {}).items()):
        lines.append("  not verifiable: %d %s" % (n, why))
    return lines
