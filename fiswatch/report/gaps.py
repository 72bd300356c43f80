"""A probe's write gaps, stall windows and failover pairing, from its write and fault times (pure).

The rules are told in report/build.py's docstring (write gaps, stall windows, failovers);
build_report calls these for every probe and wire client.
"""
import bisect
from itertools import islice
from typing import Any, Dict, List, Optional, Sequence, Tuple

from fiswatch.report.coerce import as_float
from fiswatch.report.model import Gap, LabFailover, OutagePair, Window
from fiswatch.report.timeline import overlap

MIN_SILENT_GAP = 1.0
SILENT_GAP_FACTOR = 10.0


def stall_windows(states: List[Dict[str, Any]], end: float, stall_after: float) -> List[Window]:
    """A probe's STALLED windows from its `state` events: from the hung call's start to the next change."""
    out = []
    began = None  # type: Optional[float]
    for ev in states:
        ts = ev["ts"]
        if ev.get("state") == "STALLED":
            if began is None:
                back = as_float(ev.get("stalled_for"))
                began = ts - (back if back is not None and back >= 0 else stall_after)
        elif began is not None:
            out.append(Window(began, max(ts, began)))
            began = None
    if began is not None:
        out.append(Window(began, max(end, began), open=True))
    return out


def write_gaps(writes: Sequence[float], faults: List[float], errors: List[float], doubts: List[float],
                start: float, end: float, ended_ok: bool = True, pauses: Sequence[Window] = (),
                normal: Optional[float] = None) -> List[Gap]:
    """See report/build.py's docstring: gaps anchored on faults, or silent and long; paused time not counted.

    `normal`: the writes' usual interval when known (wire clients), instead of their median."""
    if not writes:
        if faults:
            return [Gap(start, max(start, end), open=True, errors=len(errors), in_doubt=len(doubts), from_start=True,
                        paused=overlap(pauses, start, end))]
        return []
    threshold = max(MIN_SILENT_GAP, SILENT_GAP_FACTOR * (median_interval(writes) if normal is None else normal))

    def count(series: List[float], lo: float, hi: float) -> int:
        return bisect.bisect_left(series, hi) - bisect.bisect_right(series, lo)

    gaps = []
    if count(faults, start - 1e9, writes[0]):
        gaps.append(Gap(start, writes[0], errors=count(errors, -1e18, writes[0]),
                        in_doubt=count(doubts, -1e18, writes[0]), from_start=True,
                        paused=overlap(pauses, start, writes[0])))
    nfaults, fi = len(faults), 0
    for a, b in zip(writes, islice(writes, 1, None)):
        while fi < nfaults and faults[fi] <= a:  # the first fault after a (both in time order)
            fi += 1
        anchored = fi < nfaults and faults[fi] < b
        if not anchored and b - a <= threshold:  # the common case: the next write came on time
            continue
        paused = overlap(pauses, a, b)
        if anchored or b - a - paused > threshold:
            gaps.append(Gap(a, b, anchored=anchored, errors=count(errors, a, b), in_doubt=count(doubts, a, b),
                            paused=paused))
    last = writes[-1]
    tail_faults = count(faults, last, 1e18)
    paused = overlap(pauses, last, end)
    if tail_faults or (end - last - paused > threshold and not ended_ok):
        gaps.append(Gap(last, max(end, last), open=True, anchored=tail_faults > 0,
                        errors=count(errors, last, 1e18), in_doubt=count(doubts, last, 1e18), paused=paused))
    return gaps


def outage_pairs(gaps: List[Gap], failovers: List[Tuple[int, LabFailover]],
                  pauses: Sequence[Window]) -> Tuple[OutagePair, ...]:
    """Each failover with the longest gap overlapping its own outage, and how far it ran past its end."""
    out = []
    for k, (number, failover) in enumerate(failovers):
        if failover.outage_start is None:
            out.append(OutagePair(number, failover))
            continue
        lo = failover.outage_start
        hi = failover.outage_end if failover.outage_end is not None else float("inf")
        over = [g for g in gaps if g.start <= hi and g.end >= lo and not (g.open and g.from_start)]
        if not over:
            out.append(OutagePair(number, failover))
            continue
        gap = max(over, key=lambda g: g.duration)
        nxt = failovers[k + 1][1] if k + 1 < len(failovers) else None
        next_start = None if nxt is None else (nxt.outage_start if nxt.outage_start is not None else nxt.started)
        into_next = next_start is not None and gap.end > next_start
        if gap.open or failover.outage_end is None or into_next:
            out.append(OutagePair(number, failover, gap, None, into_next=into_next and not gap.open))
            continue
        paused_after = overlap(pauses, failover.outage_end, gap.end)
        out.append(OutagePair(number, failover, gap, gap.end - failover.outage_end - paused_after,
                              paused_after=paused_after))
    return tuple(out)


def median_interval(writes: Sequence[float]) -> float:
    """The median time between consecutive writes, to the millisecond, without a list of every interval.

    The intervals are counted per millisecond (a run writes every interval, so a few hundred
    different values at most); the threshold it feeds (10 x the median, at least 1 s) only
    depends on it above 100 ms, where a millisecond is 1 %.

    >>> median_interval([0.0, 0.05, 0.1, 0.16, 2.0])
    0.055
    >>> median_interval([1.0])
    0.0
    """
    counts = {}  # type: Dict[int, int]
    total = 0
    for a, b in zip(writes, islice(writes, 1, None)):
        key = int(round((b - a) * 1000))
        counts[key] = counts.get(key, 0) + 1
        total += 1
    if not total:
        return 0.0
    keys = sorted(counts)

    def nth(n: int) -> int:
        seen = 0
        for key in keys:
            seen += counts[key]
            if seen > n:
                return key
        return keys[-1]  # pragma: no cover

    if total % 2:
        return nth(total // 2) / 1000.0
    return (nth(total // 2 - 1) + nth(total // 2)) / 2000.0
