"""One pass over a record's events, keeping what the report needs in bounded memory.

A record is mostly `write` events (one per round per probe) and `tick` events (one a
second). Held as dicts they cost about a kilobyte each: a 200 MB record took 1.6 GB. The
digest keeps every other event as it is (they are rare: states, errors, DNS answers, lab
steps, verifications), and of each write and tick only the numbers the report reads, in
typed arrays:

- per probe, each acknowledged write's time (8 bytes) and id (8 bytes), and the address
  only where it changes;
- per probe, each tick's time, ops and mean latency (24 bytes a second).

So a report costs 16 bytes per acknowledged write beyond the rare events
(docs/performance.md has the measured figure).

Runs. A record holds one run: `run_start` first, `summary` last. Two files concatenated,
or a run appended to a record, hold several; reading them as one run merges them (ghost
failovers, lost writes that are not lost). `Digest.runs` counts the `run_start` lines;
`run=N` keeps only the N-th run (events before the first `run_start` belong to run 1).
"""
import math
from array import array
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Tuple

from fiswatch.report.coerce import as_dict, as_float, as_int, as_text

COMPACT = ("write", "read", "tick")


@dataclass
class ProbeColumns:
    """One probe's writes and ticks as numbers (mutable while reading, local to a report)."""

    write_ts: array = field(default_factory=lambda: array("d"))
    write_ids: array = field(default_factory=lambda: array("q"))  # 0 for a write without an id
    address_turns: List[Tuple[float, str]] = field(default_factory=list)  # (ts, address) where it changed
    tick_ts: array = field(default_factory=lambda: array("d"))
    tick_ops: array = field(default_factory=lambda: array("q"))
    tick_lat: array = field(default_factory=lambda: array("d"))  # NaN: no latency that second
    in_order: bool = True
    endpoint: str = ""
    last_address: str = ""  # of the last write or `connect` (a connect elsewhere makes the next write a turn)
    reads: bool = False  # a read probe: its `read` events stand where a writer's `write` events do

    def add_write(self, ts: float, ev: Dict[str, Any]) -> None:
        if self.write_ts and ts < self.write_ts[-1]:
            self.in_order = False
        self.write_ts.append(ts)
        ident = ev.get("id")
        if type(ident) is not int:  # the common case skips the checks
            ident = as_int(ident)
        self.write_ids.append(ident if ident is not None and -(1 << 63) < ident < (1 << 63) else 0)
        address = ev.get("address")
        if address and address != self.last_address:
            address = as_text(address)
            if address:
                self.address_turns.append((ts, address))
                self.last_address = address
        if not self.endpoint:
            self.endpoint = as_text(ev.get("endpoint"))

    def add_tick(self, ts: float, item: Dict[str, Any]) -> None:
        self.tick_ts.append(ts)
        self.tick_ops.append(max(0, min(as_int(item.get("ops")) or 0, (1 << 62))))
        lat = as_float(item.get("latency_ms"))
        self.tick_lat.append(float("nan") if lat is None else lat)

    def writes(self) -> array:
        """The write times, in order."""
        if not self.in_order:  # a clock step back: rare, and only then a sorted copy
            self.write_ts = array("d", sorted(self.write_ts))
            self.in_order = True
        return self.write_ts

    def ticks(self) -> List[Tuple[float, int, Optional[float]]]:
        """(ts, ops, latency or None) per tick (one a second: small)."""
        return [(ts, ops, None if math.isnan(lat) else lat)
                for ts, ops, lat in zip(self.tick_ts, self.tick_ops, self.tick_lat)]

    def acked_ids(self, wanted: Iterable[int]) -> set:
        """Those of `wanted` that one of this probe's writes acknowledged (one scan, no set of every id)."""
        wanted = set(wanted) - {0}
        return {i for i in self.write_ids if i in wanted} if wanted else set()


@dataclass
class Digest:
    """What build_report reads: the rare events (sorted dicts) and each probe's columns."""

    events: List[Dict[str, Any]] = field(default_factory=list)
    probes: Dict[str, ProbeColumns] = field(default_factory=dict)
    dropped: int = 0  # events without a usable ts
    runs: int = 0  # run_start lines seen in the whole input
    run: Optional[int] = None  # the run kept (None: all of them)
    run_starts: List[float] = field(default_factory=list)  # ts of each run_start, in file order

    def columns(self, probe: str) -> ProbeColumns:
        found = self.probes.get(probe)
        if found is None:
            found = self.probes[probe] = ProbeColumns()
        return found


def digest(events: Iterable[Any], run: Optional[int] = None) -> Digest:
    """Read `events` once (any iterable of event dicts, e.g. a RecordReader); keep run `run` or all."""
    out = Digest(run=run)
    current = 1
    for ev in events:
        if not isinstance(ev, dict):
            out.dropped += 1
            continue
        kind = ev.get("event")
        ts = ev.get("ts")
        if type(ts) is not float:
            ts = as_float(ts)
        if ts is None or not isinstance(kind, str):
            out.dropped += 1
            continue
        if kind == "run_start":
            out.runs += 1
            out.run_starts.append(ts)
            current = out.runs
        if run is not None and current != run:
            continue
        if kind == "write" or kind == "read":  # a read probe's reads: its successes, as a writer's writes
            name = ev.get("probe")
            if isinstance(name, str) and name:
                columns = out.columns(name)
                columns.add_write(ts, ev)
                columns.reads = columns.reads or kind == "read"
                continue
        elif kind == "connect" and isinstance(ev.get("probe"), str):  # kept below; the next write's address
            out.columns(ev["probe"]).last_address = as_text(ev.get("address"))  # after it is a turn of its own
        elif kind == "tick":
            for name, item in as_dict(ev.get("probes")).items():
                if isinstance(item, dict) and isinstance(name, str):
                    out.columns(name).add_tick(ts, item)
            continue
        out.events.append(ev if type(ev["ts"]) is float else dict(ev, ts=ts))
    out.events.sort(key=lambda e: e["ts"])
    for columns in out.probes.values():
        columns.writes()
    return out


def runs_message(path: str, result: Digest, command: str) -> Optional[str]:
    """One line when a record holds several runs and none was picked; None otherwise."""
    if result.run is not None or result.runs <= 1:
        return None
    import time

    def when(ts: float) -> str:
        try:
            return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))
        except (OverflowError, OSError, ValueError):
            return "?"

    starts = ", ".join("%d at %s" % (n, when(ts)) for n, ts in enumerate(result.run_starts[:4], 1))
    more = " ..." if result.runs > 4 else ""
    return ("%s holds %d runs (two records joined, or a run appended to a record): %s%s; read as one they would "
            "merge (ghost failovers, writes called lost); pick one with `fiswatch %s %s --run N` (N from 1 to %d)"
            % (path, result.runs, starts, more, command, path, result.runs))


def run_message(path: str, result: Digest) -> Optional[str]:
    """One line when --run N names a run the record does not hold."""
    if result.run is None or 1 <= result.run <= max(1, result.runs):
        return None
    return "%s holds %d run%s: --run %d is not one of them; give --run 1%s" % (
        path, max(1, result.runs), "" if result.runs <= 1 else "s", result.run,
        " to %d" % result.runs if result.runs > 1 else "")
