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
the moment the probes stopped (`run_stop`) when it never changed again.

Pauses. While the dashboard is paused (key p) no probe starts a round: that silence is the
user's, not the driver's. Pause windows are listed on their own; the paused seconds inside a
gap are not counted in its duration (a gap that is only a pause is no gap), except while the
probe was stalled in a call (a paused dashboard does not unstick a driver).

Failovers. Each lab failover of a probe's endpoint is paired with the longest gap that
overlaps its injected outage; `beyond` = how long after the outage ended the writes came
back (paused time after the outage not counted).

Wire clients. A program the lab measured from the wire (lab/wire/) is a probe too: one
`wire_client` event per endpoint carries its stretches of acknowledged writes (`segments`, writes
closer than `gap_min` seconds apart), its errors and its refused writes; its gaps, failover
pairs and verdict come from the same code as the probes', with the writes' normal interval
taken as `gap_min` (so any silence over max(1 s, 10 x gap_min) is a gap).

The end. Open gaps and stalls end when the probes were stopped (`run_stop`), not when the
run's closing verification finished; records without `run_stop` use the last event before
that verification.

Memory. The events are read once through fiswatch.report.digest: the rare ones are kept as
dicts, each write and tick only as numbers (16 bytes per acknowledged write), so a report
of a large record costs little more than its writes' times and ids.
"""
from itertools import islice
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from fiswatch import events as E
from fiswatch.report.coerce import as_dict, as_float, as_int, as_list, as_text
from fiswatch.report.digest import Digest, ProbeColumns, digest
from fiswatch.report.gaps import outage_pairs, stall_windows, write_gaps
from fiswatch.report.model import (EndpointWrites, LabFailover, ProbeReport, Report, VerifyCheck,
                                   Window, failover_end, failovers_for)
from fiswatch.report.timeline import dns_changes, lab_failovers, pause_windows, subtract, timeline_markers

FAULT_STATES = frozenset(["STALLED", "ERROR", "RECONNECTING"])


def build_report(events: Union[Iterable[Dict[str, Any]], Digest], notes: Sequence[str] = (),
                 record_path: str = "") -> Report:
    """A Report from event dicts (any order; sorted by `ts` here; any field may be of a wrong type), or
    from their digest. Pure. `record_path` is the record's file, named in what the report asks to run."""
    found = events if isinstance(events, Digest) else digest(events)
    evs, dropped = found.events, found.dropped
    out_notes = list(notes)
    if dropped:
        out_notes.append("ignored %d event(s) without a usable time (`ts` not a number)" % dropped)
    firsts = [c.write_ts[0] for c in found.probes.values() if c.write_ts]
    firsts += [c.tick_ts[0] for c in found.probes.values() if c.tick_ts]
    lasts = [c.write_ts[-1] for c in found.probes.values() if c.write_ts]
    lasts += [c.tick_ts[-1] for c in found.probes.values() if c.tick_ts]
    if not evs and not firsts:
        return Report(start=0.0, end=0.0, notes=tuple(out_notes + ["no events"]), record_path=record_path)
    run_start = next((e for e in evs if e["event"] == E.RUN_START), None)
    summary = next((e for e in reversed(evs) if e["event"] == E.SUMMARY), None)
    stop = next((e for e in evs if e["event"] == E.RUN_STOP), None)
    start = run_start["ts"] if run_start else min(firsts + [e["ts"] for e in evs[:1]])
    if stop is not None:
        end = stop["ts"]
    else:
        candidates = lasts + [next((e["ts"] for e in reversed(evs) if e["event"] not in E.CLOSING), evs[-1]["ts"])
                              if evs else lasts[0]]
        end = max(candidates)
    if run_start is None:
        out_notes.append("no run_start line: times are relative to the first event")
    if summary is None:
        out_notes.append("no summary line: the run did not end cleanly (killed?)")
    stall_after = as_float(as_dict(run_start).get("stall_after")) or 0.0

    failovers = lab_failovers(evs)
    pauses = pause_windows(evs, end)
    dns = dns_changes(evs, failovers)
    probe_meta = _probe_meta(run_start, evs, found)
    endpoints = [meta["endpoint"] for meta in probe_meta.values()]
    by_probe = {}  # type: Dict[str, List[Dict[str, Any]]]
    for ev in evs:
        name = ev.get("probe")
        if isinstance(name, str) and name in probe_meta:
            by_probe.setdefault(name, []).append(ev)
    # a read endpoint's failovers are its writer's (`reads_from` in run_start): a read gap pairs with them
    reads_from = {as_text(e.get("name")): as_text(e.get("reads_from")) for e in
                  as_list(as_dict(run_start).get("endpoints")) if isinstance(e, dict) and e.get("reads_from")}
    probes = []
    for name, meta in probe_meta.items():
        probes.append(_probe_report(name, meta, by_probe.get(name, []), found.probes.get(name) or ProbeColumns(),
                                    summary, start, end, stall_after,
                                    failovers_for(failovers, reads_from.get(meta["endpoint"]) or meta["endpoint"],
                                                  endpoints), pauses))
    order = {name: n for n, name in enumerate(endpoints)}
    dns.sort(key=lambda d: (order.get(d.endpoint, len(order)), d.endpoint))
    marks = timeline_markers(evs, dns, pauses)
    verify_events = [e for e in evs if e["event"] == E.VERIFY]
    verified = tuple((e["ts"], as_text(e.get("endpoint")), _verdict(e)) for e in verify_events)
    checks = tuple(_check(e) for e in verify_events)
    caveats = tuple((as_text(e.get("endpoint")), as_text(w)) for e in verify_events
                    for w in as_list(e.get("warnings")) if w)
    return Report(start=start, end=max(start, end), probes=tuple(probes), dns=tuple(dns),
                  failovers=tuple(failovers), markers=tuple(marks), notes=tuple(out_notes),
                  complete=summary is not None, verified=verified, pauses=tuple(pauses), verify_caveats=caveats,
                  checks=checks, writes=_endpoint_writes(probes, found, checks),
                  record_path=record_path, run=found.run, runs=max(1, found.runs),
                  unverified_reasons=_unverified_reasons(evs),
                  lab_daemon=tuple((e["ts"], as_text(e.get("state"))) for e in evs if e["event"] == E.LAB_DAEMON))


def _verdict(ev: Dict[str, Any]) -> str:
    """`verify` event (written by the run after a failover / at the end) as a few words."""
    if ev.get("error"):
        return "not verified (%s)" % as_text(ev["error"])
    lost = max(0, as_int(ev.get("lost")) or 0) + max(0, as_int(ev.get("changed")) or 0)
    acked = as_int(ev.get("acknowledged"))
    text = "%s, %s acknowledged, %d lost" % ("OK" if not lost else "LOST WRITES", "?" if acked is None else acked, lost)
    if lost and as_list(ev.get("warnings")):
        text += " (may have read a lagging reader: check again with `fiswatch verify FILE`)"
    return text


def _probe_meta(run_start: Optional[Dict[str, Any]], evs: List[Dict[str, Any]],
                found: Digest) -> Dict[str, Dict[str, Any]]:
    """probe name -> {endpoint, backend, library, version, available}, run_start order first."""
    meta = {}  # type: Dict[str, Dict[str, Any]]
    for item in as_list(as_dict(run_start).get("probes")):
        if isinstance(item, dict) and isinstance(item.get("probe"), str) and item["probe"]:
            name = item["probe"]
            meta[name] = {
                "endpoint": as_text(item.get("endpoint")) or name.split("/")[0],
                "backend": as_text(item.get("backend")) or name.split("/", 1)[-1],
                "library": as_text(item.get("library")), "version": as_text(item.get("version")),
                "available": item.get("available", True) is not False}
    for ev in evs:
        name = ev.get("probe")
        if isinstance(name, str) and name and name not in meta:
            meta[name] = {"endpoint": as_text(ev.get("endpoint")) or name.split("/")[0],
                          "backend": as_text(ev.get("backend")) or name.split("/", 1)[-1],
                          "library": "", "version": "", "available": True}
    for name, columns in found.probes.items():
        if name and name not in meta and columns.write_ts:
            meta[name] = {"endpoint": columns.endpoint or name.split("/")[0], "backend": name.split("/", 1)[-1],
                          "library": "", "version": "", "available": True}
    return meta


def _probe_report(name: str, meta: Dict[str, Any], mine: List[Dict[str, Any]], columns: ProbeColumns,
                  summary: Optional[Dict[str, Any]], start: float, end: float, stall_after: float,
                  failovers: List[Tuple[int, LabFailover]], pauses: Sequence[Window]) -> ProbeReport:
    writes: Sequence[float] = columns.writes()
    wire = _wire_facts([e for e in mine if e["event"] == E.WIRE_CLIENT])
    if wire is not None:
        writes = sorted(list(writes) + wire["writes"])
    doubt_evs = [e for e in mine if e["event"] == E.WRITE_IN_DOUBT]
    acked_ids = columns.acked_ids(i for i in (as_int(e.get("id")) for e in doubt_evs) if i is not None)
    # an in-doubt write whose COMMIT did return after all (a `write` with its id) is not in doubt
    open_doubts = [e for e in doubt_evs if as_int(e.get("id")) is None or as_int(e.get("id")) not in acked_ids]
    # one still in flight when the probes stopped is no fault seen by the probe (its stall is)
    doubts = [e["ts"] for e in doubt_evs if e.get("at_stop") is not True]
    errors = [e for e in mine if e["event"] == E.ERROR]
    states = [e for e in mine if e["event"] == E.STATE]
    kinds = {}  # type: Dict[str, int]
    for e in errors:
        key = _error_key(e)
        kinds[key] = kinds.get(key, 0) + 1
    stalls = stall_windows(states, end, stall_after)
    failovers_done = [e["ts"] for e in mine if e["event"] == E.FAILOVER]  # handled by the client itself
    faults = sorted([e["ts"] for e in errors] + doubts + failovers_done + (wire["faults"] if wire else [])
                    + [e["ts"] for e in states if as_text(e.get("state")) in FAULT_STATES]
                    + [w.start for w in stalls])
    final = as_dict(as_dict(as_dict(summary).get("probes")).get(name))
    final_state = as_text(final.get("state")) or (as_text(states[-1].get("state")) if states else "") or None
    own_pauses = subtract(pauses, stalls)  # stuck in a call: the pause did not cause that silence
    gaps = write_gaps(writes, faults, [e["ts"] for e in errors], doubts, start, end,
                      ended_ok=final_state in (None, "OK", "STOPPED"), pauses=own_pauses,
                      normal=wire["gap_min"] if wire else None)
    turns = [(e["ts"], as_text(e.get("address"))) for e in mine if e["event"] == E.CONNECT and e.get("address")]
    addresses = [address for _, address in sorted(turns + columns.address_turns, key=lambda t: t[0])]
    ticks = columns.ticks()
    ops_from_ticks = sum(ops for _, ops, _ in ticks)
    latencies = [(ops, lat) for _, ops, lat in ticks if lat is not None]
    weight = sum(max(ops, 1) for ops, _ in latencies)
    mean = sum(max(ops, 1) * lat for ops, lat in latencies) / weight if latencies else None
    ops = as_int(final.get("ops"))
    if ops is None or ops < 0:
        ops = ops_from_ticks if ticks else (wire["acked"] if wire else len(writes))
    n_errors = as_int(final.get("errors"))
    if not meta.get("available", True):
        final_state = final_state or "UNAVAILABLE"
    return ProbeReport(
        probe=name, endpoint=meta["endpoint"], backend=meta["backend"], library=meta["library"],
        version=meta["version"], available=bool(meta.get("available", True)), ops=ops,
        acknowledged=wire["acked"] if wire else len(writes), in_doubt=len(open_doubts), failovers=len(failovers_done),
        errors=max(n_errors if n_errors is not None else 0, len(errors)) + (wire["errors"] if wire else 0),
        errors_by_kind=tuple(sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))),
        stalls=tuple(stalls), write_gaps=tuple(gaps),
        address_before=addresses[0] if addresses else None,
        address_after=addresses[-1] if addresses else None, addresses=_in_turn(addresses), final_state=final_state,
        latency_ms_mean=None if mean is None else round(mean, 2),
        latency_ms_worst=max(lat for _, lat in latencies) if latencies else None,
        outages=outage_pairs(gaps, [(n, f) for n, f in failovers if failover_end(f) >= first_seen(mine, writes, wire)],
                             own_pauses), refused_at=wire["refused_at"] if wire else None,
        reads=columns.reads, rolled_back=wire["rolled_back"] if wire else 0,
        rolled_back_writes=wire["rolled_back_writes"] if wire else 0)


def first_seen(mine: List[Dict[str, Any]], writes: Sequence[float], wire: Optional[Dict[str, Any]]) -> float:
    """When the client was first seen (-inf: never): its first event or write; a wire client's one event
    comes at the end, its first write and fault are in it. A failover over before then is not its own."""
    seen = [e["ts"] for e in mine[:1] if e["event"] != E.WIRE_CLIENT] + list(writes[:1]) + list(wire["faults"] if wire else [])
    return min(seen) if seen else float("-inf")


def _wire_facts(evs: List[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """A wire client's writes (segment ends), faults, counts from its `wire_client` events; None if none."""
    if not evs:
        return None
    writes, faults, acked, errors, refused_at, gap_min = [], [], 0, 0, None, 0.2
    rolled_back = rolled_back_writes = 0
    for ev in evs:
        gap_min = as_float(ev.get("gap_min")) or gap_min
        acked += max(0, as_int(ev.get("acked")) or 0)
        rolled_back += max(0, as_int(ev.get("rolled_back")) or 0)
        rolled_back_writes += max(0, as_int(ev.get("rolled_back_writes")) or 0)
        for seg in as_list(ev.get("segments")):
            pair = [as_float(x) for x in as_list(seg)[:2]]
            if len(pair) == 2 and None not in pair:
                writes.extend(_fill(pair[0], pair[1], gap_min))  # type: ignore[arg-type]
        for code_count in as_dict(ev.get("errors")).values():
            errors += max(0, as_int(code_count) or 0)
        last_error = as_list(ev.get("last_error"))
        if len(last_error) == 2 and as_float(last_error[1]) is not None:
            faults.append(as_float(last_error[1]))
        faults.extend(t for t in (as_float(x) for x in as_list(ev.get("faults"))) if t is not None)
        refused = as_float(ev.get("last_refused"))
        if refused is not None:
            refused_at = refused if refused_at is None else max(refused_at, refused)
    return {"writes": writes, "faults": faults, "acked": acked, "errors": errors, "refused_at": refused_at,
            "gap_min": gap_min, "rolled_back": rolled_back, "rolled_back_writes": rolled_back_writes}


def _fill(start: float, end: float, step: float) -> List[float]:
    """Write times standing for a stretch of writes no more than `step` apart (never a gap inside).

    >>> _fill(10.0, 10.5, 0.2)
    [10.0, 10.2, 10.4, 10.5]
    """
    out, t = [], start
    while t < end:
        out.append(round(t, 6))
        t += step
    return out + [end]


def _in_turn(addresses: List[str], limit: int = 8) -> Tuple[str, ...]:
    out = []  # type: List[str]
    for address in addresses:
        if not out or out[-1] != address:
            out.append(address)
    return tuple(out[:limit])


def _error_key(ev: Dict[str, Any]) -> str:
    code, kind = as_int(ev.get("code")), as_text(ev.get("kind")) or "error"
    return "%s %s" % (code, kind) if code is not None else kind


def _check(ev: Dict[str, Any]) -> VerifyCheck:
    """A `verify` event as numbers: when, which endpoint, how many writes it covered, its verdict."""
    lost = max(0, as_int(ev.get("lost")) or 0) + max(0, as_int(ev.get("changed")) or 0)
    return VerifyCheck(ts=ev["ts"], endpoint=as_text(ev.get("endpoint")), acknowledged=as_int(ev.get("acknowledged")),
                       lost=lost, error=as_text(ev.get("error")) or None, verdict=_verdict(ev))


def _endpoint_writes(probes: Sequence[ProbeReport], found: Digest,
                     checks: Sequence[VerifyCheck]) -> Tuple[EndpointWrites, ...]:
    """Per endpoint (in probe order): its acknowledged writes, which of them a check covered, and the rest.

    A `verify` event covers the writes recorded before it ran (its `acknowledged` count); the
    writes after them, up to the last, are NOT VERIFIED unless a later check covered them.
    """
    import heapq

    out = []
    for endpoint in dict.fromkeys(p.endpoint for p in probes if not p.reads):
        series = [c.writes() for name, c in found.probes.items()
                  if (c.endpoint or name.split("/")[0]) == endpoint and len(c.write_ts) and not c.reads]
        total = sum(len(times) for times in series)
        mine = [c for c in checks if c.endpoint == endpoint]
        good = [c for c in mine if c.error is None and c.acknowledged is not None and c.acknowledged >= 0]
        last_good = good[-1] if good else None
        covered = min(total, last_good.acknowledged or 0) if last_good is not None else 0  # `good`: never None
        failed = mine[-1] if mine and mine[-1].error is not None else None
        unverified_from = None
        if total > covered:
            unverified_from = next(islice(heapq.merge(*series), covered, None), None)
        out.append(EndpointWrites(
            endpoint=endpoint, acknowledged=total,
            first_ts=min((t[0] for t in series), default=None), last_ts=max((t[-1] for t in series), default=None),
            verified=covered, check=last_good, unverified_from=unverified_from,
            reason=failed.error if failed is not None and (last_good is None or failed.ts > last_good.ts) else None))
    return tuple(out)


def _unverified_reasons(evs: Sequence[Dict[str, Any]]) -> Tuple[Tuple[str, str], ...]:
    """(endpoint, why) from the run's warnings `writes to NAME not verified: WHY; ...`."""
    out = []
    for ev in evs:
        if ev["event"] != E.WARNING:
            continue
        message = as_text(ev.get("message"))
        head, sep, rest = message.partition(" not verified: ")
        if sep and head.startswith("writes to "):
            out.append((head[len("writes to "):], rest.split(";")[0].strip()))
        elif message.startswith(("verification did not finish", "verification failed")):
            out.append(("", message.split("; check later")[0].strip()))  # the run's closing check, every endpoint
    return tuple(out)
